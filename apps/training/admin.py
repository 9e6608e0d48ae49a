from django.contrib import admin

from apps.training.models import FineTune


@admin.register(FineTune)
class FineTuneAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "base_model", "method", "dataset", "job_status", "created_at"]
    list_filter = ["method", "base_model", "created_at"]
    search_fields = ["name", "code", "owner__email", "base_model"]
    readonly_fields = ["code", "job", "metrics", "artifact"]
    raw_id_fields = ["dataset"]
    list_select_related = ["owner", "dataset", "job"]

    @admin.display(description="Status")
    def job_status(self, finetune):
        return finetune.job.get_status_display() if finetune.job else "–"
