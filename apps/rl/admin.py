from django.contrib import admin

from apps.rl.models import GrpoRun, RewardPreview


@admin.register(GrpoRun)
class GrpoRunAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "base_model", "method", "source", "recipe", "reward_last", "job_status", "created_at"]
    list_filter = ["method", "source", "recipe", "created_at"]
    search_fields = ["name", "code", "owner__email", "base_model"]
    readonly_fields = ["code", "job", "metrics", "artifact", "prompt_count", "answer_count", "base_benchmark",
                       "tuned_benchmark"]
    raw_id_fields = ["version"]
    list_select_related = ["owner", "job"]

    @admin.display(description="Reward (last steps)")
    def reward_last(self, run):
        value = (run.metrics or {}).get("reward_last")
        return "–" if value is None else f"{value:.3f}"

    @admin.display(description="Status")
    def job_status(self, run):
        return run.job.get_status_display() if run.job else "–"


@admin.register(RewardPreview)
class RewardPreviewAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "base_model", "created_at"]
    search_fields = ["code", "owner__email", "base_model"]
    readonly_fields = ["code", "job", "results", "judge"]
    list_select_related = ["owner"]
