from django.contrib import admin

from apps.evaluation.models import BenchmarkItem, BenchmarkRun


class BenchmarkItemInline(admin.TabularInline):
    model = BenchmarkItem
    fields = ["index", "reference", "extracted", "formatted", "correct"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    show_change_link = True


@admin.register(BenchmarkRun)
class BenchmarkRunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "benchmark", "model_label", "accuracy", "job_status", "created_at"]
    list_filter = ["benchmark", "created_at"]
    search_fields = ["name", "code", "owner__email", "model_label", "base_model"]
    readonly_fields = ["code", "job", "results", "model_label"]
    raw_id_fields = ["finetune"]
    list_select_related = ["owner", "job"]
    inlines = [BenchmarkItemInline]

    @admin.display(description="Accuracy")
    def accuracy(self, run):
        value = (run.results or {}).get("accuracy")
        return "–" if value is None else f"{value:.1%}"

    @admin.display(description="Status")
    def job_status(self, run):
        return run.job.get_status_display() if run.job else "–"


@admin.register(BenchmarkItem)
class BenchmarkItemAdmin(admin.ModelAdmin):
    list_display = ["__str__", "run", "reference", "extracted", "correct", "formatted"]
    list_filter = ["correct", "formatted"]
    raw_id_fields = ["run"]
    readonly_fields = ["run", "index", "problem_id", "question", "reference", "completion", "extracted", "formatted",
                       "correct"]
