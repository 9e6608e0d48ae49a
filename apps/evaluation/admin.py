from django.contrib import admin

from apps.evaluation.models import BenchmarkItem, BenchmarkRun, HeldoutEvaluation


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


@admin.register(HeldoutEvaluation)
class HeldoutEvaluationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "automatic", "judge_label", "token_f1", "created_at"]
    list_filter = ["automatic", "created_at"]
    search_fields = ["code", "owner__email", "finetune__name"]
    readonly_fields = ["code", "finetune", "job", "automatic", "judge_provider", "judge_label", "settings", "results"]
    list_select_related = ["owner", "finetune"]

    @admin.display(description="Token F1 (base → tuned)")
    def token_f1(self, evaluation):
        results = evaluation.results or {}
        if not results:
            return "–"
        return f"{results['base']['token_f1']:.3f} → {results['tuned']['token_f1']:.3f}"
