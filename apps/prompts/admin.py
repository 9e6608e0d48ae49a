from django.contrib import admin

from apps.prompts.models import OptimizedPrompt, PromptCandidate, SavedPrompt


class PromptCandidateInline(admin.TabularInline):
    model = PromptCandidate
    extra = 0
    fields = ["index", "parent_index", "status", "val_score", "minibatch_score", "calls", "prompt"]
    readonly_fields = fields
    can_delete = False


@admin.register(OptimizedPrompt)
class OptimizedPromptAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "source", "metric", "budget", "task_label", "created_at"]
    list_filter = ["source", "metric", "created_at"]
    search_fields = ["name", "code", "owner__email"]
    readonly_fields = ["code", "job", "result", "best_prompt", "train_count", "val_count"]
    raw_id_fields = ["version"]
    list_select_related = ["owner"]
    inlines = [PromptCandidateInline]


@admin.register(SavedPrompt)
class SavedPromptAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "score", "created_at"]
    search_fields = ["name", "code", "owner__email", "text"]
    readonly_fields = ["code", "source_run"]
    list_select_related = ["owner"]
