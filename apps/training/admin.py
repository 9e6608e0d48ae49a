from django.contrib import admin

from apps.training.models import FineTune


@admin.register(FineTune)
class FineTuneAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "training", "base_model", "parent", "method", "dataset", "job_status", "created_at"]
    list_filter = ["training", "method", "base_model", "created_at"]
    search_fields = ["name", "code", "owner__email", "base_model"]
    readonly_fields = ["code", "job", "metrics", "artifact", "folder", "adapter_base"]
    raw_id_fields = ["dataset", "version", "parent"]
    list_select_related = ["owner", "dataset", "job", "parent"]

    @admin.display(description="Status")
    def job_status(self, finetune):
        return finetune.job.get_status_display() if finetune.job else "–"
