from django.contrib import admin

from apps.core.models import Job, JobEvent
from apps.core.services import job_cancel, job_retry


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    can_delete = False
    readonly_fields = ["type", "created_at", "data"]
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["code", "kind", "title", "owner", "status", "phase", "progress", "queue", "attempts", "created_at", "finished_at"]
    list_filter = ["status", "kind", "queue", "created_at"]
    search_fields = ["code", "title", "owner__email", "celery_task_id", "error_message"]
    readonly_fields = ["code", "owner", "kind", "parent", "celery_task_id", "worker", "attempts", "created_at", "started_at",
                       "finished_at", "heartbeat_at", "cancel_requested_at", "error", "result"]
    list_select_related = ["owner"]
    inlines = [JobEventInline]
    actions = ["cancel_jobs", "retry_jobs"]

    @admin.action(description="Cancel the selected jobs")
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            job_cancel(job=job)

    @admin.action(description="Retry the selected failed or cancelled jobs")
    def retry_jobs(self, request, queryset):
        for job in queryset.filter(status__in=[Job.Status.FAILED, Job.Status.CANCELLED]):
            job_retry(job=job)


@admin.register(JobEvent)
class JobEventAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "type", "created_at"]
    list_filter = ["type", "created_at"]
    search_fields = ["job__code"]
    raw_id_fields = ["job"]
