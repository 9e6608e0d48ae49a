from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.core.models import Job, JobEvent


def job_list_for_user(*, user) -> QuerySet[Job]:
    return Job.objects.filter(owner=user, parent__isnull=True)


def job_get_for_user(*, user, code) -> Job:
    """The user's job with this code; 404 for anyone else, so strangers cannot even learn it exists."""
    try:
        return Job.objects.get(owner=user, code=code)
    except (Job.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such job.")


def job_events(*, job, after_id: int = 0, limit: int = 2000) -> list[JobEvent]:
    return list(JobEvent.objects.filter(job=job, id__gt=after_id).order_by("id")[:limit])


def job_queue_position(*, job) -> int | None:
    """The job's place in line: for GPU jobs in the fair dispatch order, otherwise by creation time."""
    from apps.core.scheduling import GPU_QUEUE, gpu_queue_position

    if job.status != Job.Status.QUEUED:
        return None
    if job.queue == GPU_QUEUE:
        return gpu_queue_position(job)
    return Job.objects.filter(status=Job.Status.QUEUED, queue=job.queue, created_at__lt=job.created_at).count() + 1
