"""Fair scheduling of GPU jobs.

GPU jobs are not handed to the broker when they are created: they wait in the database, and `gpu_dispatch`
sends as many as there are free GPU slots, choosing fairly. The user with the fewest GPU jobs running goes
first (then the oldest job), and nobody runs more than GARAGE_GPU_JOBS_PER_USER at once, so one user's twenty
jobs do not starve another's one. Dispatch runs when a GPU job is queued or ends, and with every reaper run."""
from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import redis
from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from apps.core.broker import BROKER_ERRORS, job_message_send
from apps.core.models import Job
from apps.core.realtime import queue_publish

logger = logging.getLogger(__name__)

GPU_QUEUE = "gpu"


def _active(jobs) -> Q:
    """Running, or handed to the broker and about to run."""
    return Q(status=Job.Status.RUNNING) | (Q(status=Job.Status.QUEUED) & ~Q(celery_task_id=""))


def gpu_active_per_user() -> Counter:
    """How many GPU jobs each user has running or handed to the broker."""
    gpu = Job.objects.filter(queue=GPU_QUEUE)
    return Counter(gpu.filter(_active(gpu)).values_list("owner_id", flat=True))


def gpu_waiting_order() -> list[Job]:
    """The GPU jobs not yet dispatched, in the order they will be dispatched (ignoring free slots).

    Round robin between users: fewest active jobs first, then the user whose last GPU job started longest
    ago (or never), then the oldest job. Each pick counts as active and as just started for the next pick."""
    gpu = Job.objects.filter(queue=GPU_QUEUE)
    running = gpu_active_per_user()
    last_start = dict(gpu.filter(started_at__isnull=False).values("owner_id").annotate(last=Max("started_at"))
                      .values_list("owner_id", "last"))
    never = datetime.min.replace(tzinfo=dt_timezone.utc)
    waiting = list(gpu.filter(status=Job.Status.QUEUED, celery_task_id="").order_by("created_at", "id"))
    order, now = [], timezone.now()
    while waiting:
        job = min(waiting, key=lambda j: (running[j.owner_id], last_start.get(j.owner_id, never), j.created_at, j.id))
        waiting.remove(job)
        order.append(job)
        running[job.owner_id] += 1
        now += timedelta(microseconds=1)  # later picks of the same user sort after everyone else's
        last_start[job.owner_id] = now
    return order


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
