"""Fair scheduling of GPU jobs.

GPU jobs are not handed to the broker when they are created: they wait in the database, and `gpu_dispatch`
sends as many as there are free GPU slots, choosing fairly. The user with the fewest GPU jobs running goes
first (then the oldest job), and nobody runs more than GARAGE_GPU_JOBS_PER_USER at once, so one user's twenty
jobs do not starve another's one (the order itself is a read: apps.core.selectors.gpu_waiting_order, which the line
of waiting jobs shows too). Dispatch runs when a GPU job is queued or ends, and with every reaper run."""
from __future__ import annotations

import logging
import uuid

import redis
from django.conf import settings
from django.utils import timezone

from apps.core.broker import BROKER_ERRORS, job_message_send
from apps.core.models import Job
from apps.core.realtime import queue_publish
from apps.core.selectors import GPU_QUEUE, gpu_active_per_user, gpu_waiting_order

logger = logging.getLogger(__name__)


def gpu_dispatch(*, line_moved: bool = False) -> int:
    """Send waiting GPU jobs to the broker while GPU slots are free. Returns how many were sent.

    Then, when it sent any or `line_moved` says the caller changed the line (a job joined, left or ended), every job
    still waiting learns its new place (apps.core.realtime.queue_publish). While Redis is down nothing is sent and
    nothing is lost: the jobs keep waiting, and the reaper dispatches again on each run (workers.tasks.reap_jobs)."""
    try:
        sent = _gpu_dispatch()
    except BROKER_ERRORS as exc:
        logger.warning("GPU jobs were not dispatched (%s); the reaper tries again", exc)
        sent = 0
    if sent or line_moved:
        queue_publish(queue=GPU_QUEUE)
    return sent


def _gpu_dispatch() -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    # One dispatcher at a time across web and worker processes, so free slots are not handed out twice.
    with client.lock("garage:gpu-dispatch", timeout=30, blocking_timeout=10):
        per_user = gpu_active_per_user()
        free = settings.GARAGE_GPU_SLOTS - sum(per_user.values())
        sent = 0
        for job in gpu_waiting_order():
            if free <= 0:
                break
            if per_user[job.owner_id] >= settings.GARAGE_GPU_JOBS_PER_USER:
                continue
            task_id = str(uuid.uuid4())
            if not Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, celery_task_id="").update(
                    celery_task_id=task_id, sent_at=timezone.now()):
                continue  # cancelled or dispatched meanwhile
            if not job_message_send(job_id=job.pk, kind=job.kind, queue=GPU_QUEUE, task_id=task_id):
                # Back to waiting, so that the unsent job does not hold the slot; the broker is down for the others too.
                Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, celery_task_id=task_id).update(
                    celery_task_id="", sent_at=None)
                break
            free -= 1
            per_user[job.owner_id] += 1
            sent += 1
    return sent
