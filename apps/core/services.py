"""Writes of the job system. The database row is the truth; every change also goes out as an event."""
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.broker import BROKER_ERRORS, RUN_TASK, job_message_send, task_ids_in_broker
from apps.core.jobtypes import job_type_get
from apps.core.models import Job, JobEvent
from apps.core.realtime import job_publish, queue_publish
from apps.core.scheduling import gpu_dispatch
from apps.core.selectors import GPU_QUEUE, job_retryable

logger = logging.getLogger(__name__)


def without_nul(value):
    """`value` with NUL characters taken out of its strings: PostgreSQL's JSON and text columns cannot hold them, and
    a model's sampled text or a document's may contain them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


def job_event_add(*, job: Job, type: str, data: dict, **fields) -> JobEvent:
    """Append an event, copy `fields` (progress, phase, message...) onto the row, and publish both."""
    fields = without_nul(fields)
    for name, value in fields.items():
        setattr(job, name, value)
    if fields:
        Job.objects.filter(pk=job.pk).update(**fields)
    event = JobEvent.objects.create(job=job, type=type, data=without_nul(data))
    job_publish(job=job, event=event)
    return event


def _status_event(job: Job, message: str = "") -> JobEvent:
    return job_event_add(job=job, type=JobEvent.Type.STATUS, data={"status": job.status, "message": message})


def job_create(*, owner, kind: str, config: dict | None = None, title: str = "", queue: str = "default",
               parent: Job | None = None, start: bool = True) -> Job:
    """Create a job row and, unless start=False, enqueue its task once the transaction commits. A title longer than
    the column (it is often built from a name the user chose) is shortened with an ellipsis."""
    limit = Job._meta.get_field("title").max_length
    if len(title) > limit:
        title = title[:limit - 1] + "…"
    job = Job.objects.create(owner=owner, kind=kind, config=config or {}, title=title, queue=queue, parent=parent)
    event = JobEvent.objects.create(job=job, type=JobEvent.Type.STATUS, data={"status": job.status, "message": "Queued"})
    # Open lists of the owner's jobs show the new job at once; only once it is committed, so none shows a phantom.
    transaction.on_commit(lambda: job_publish(job=job, event=event))
    if start:
        job_enqueue(job)
    return job


def job_enqueue(job: Job) -> None:
    """Queue a created job: send the task after commit, with a task id chosen here so that only this message may
    claim the row. GPU jobs instead wait for the fair dispatcher (apps.core.scheduling), which sends them.
    A broker that is down does not lose the job: it stays queued and the reaper sends it again."""
    from garage.celery import app

    if job.queue == GPU_QUEUE and not app.conf.task_always_eager:
        Job.objects.filter(pk=job.pk).update(celery_task_id="", sent_at=None)
        job.celery_task_id, job.sent_at = "", None
        transaction.on_commit(lambda: gpu_dispatch(line_moved=True))
        return
    task_id = str(uuid.uuid4())
    job.celery_task_id, job.sent_at = task_id, timezone.now()
    Job.objects.filter(pk=job.pk).update(celery_task_id=task_id, sent_at=job.sent_at)
    if app.conf.task_always_eager:
        # Headless runs (the CLI) execute the task right here instead of through a broker: the app's own task
        # discovery loads the worker side (workers.tasks) into this process, which only the CLI runs eagerly.
        app.loader.import_default_modules()
        transaction.on_commit(lambda: app.tasks[RUN_TASK].apply(args=[job.pk], task_id=task_id))
    else:
        transaction.on_commit(lambda: _job_send(job_id=job.pk, kind=job.kind, queue=job.queue, task_id=task_id))


def _job_send(*, job_id: int, kind: str, queue: str, task_id: str) -> None:
    if not job_message_send(job_id=job_id, kind=kind, queue=queue, task_id=task_id):
        # Not sent: the reaper's next run sends it again (jobs_resend_lost) instead of waiting out the delay.
        Job.objects.filter(pk=job_id, celery_task_id=task_id).update(sent_at=None)


def job_claim(*, job_id: int, task_id: str, worker: str) -> Job | None:
    """Atomically move a queued job to RUNNING for this task; None if someone else has it or it was cancelled.
    Only the message carrying the row's current task id may claim it: one the reaper replaced (lost, then found)
    or one of an earlier run never does."""
    if not task_id:
        return None
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, celery_task_id=task_id).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200], progress=0.0,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    job = Job.objects.get(pk=job_id)
    _status_event(job, "Started")
    transaction.on_commit(lambda: queue_publish(queue=job.queue))  # the jobs behind it move up
    return job


def job_finish(*, job: Job, status: str, result: dict | None = None, error: str = "", error_message: str = "") -> bool:
    """Move a job to one final status, exactly once. Returns False when it was already final.

    Side effects: its parent follows it (_parent_follow); then what follows a job of its kind runs (the `after` of
    its job type, apps.core.jobtypes), each one on its own: a failure there is logged, never the job's."""
    assert status in Job.FINAL
    left_the_line = job.status == Job.Status.QUEUED  # as the caller last read it: cancelled before it started
    now = timezone.now()
    fields = {"status": status, "finished_at": now, "error": error, "error_message": error_message[:500]}
    if status == Job.Status.SUCCEEDED:
        fields["progress"] = 1.0
    if result is not None:
        fields["result"] = result
    updated = Job.objects.filter(pk=job.pk).exclude(status__in=Job.FINAL).update(**fields)
    if not updated:
        return False
    for name, value in fields.items():
        setattr(job, name, value)
    message = {Job.Status.SUCCEEDED: "Finished", Job.Status.CANCELLED: "Cancelled"}.get(status, error_message)
    _status_event(job, message)
    _parent_follow(job)
    job_type = job_type_get(job.kind)
    for follow in job_type.after if job_type else ():
        try:
            follow(job)
        except Exception:
            logger.exception("What follows job %s (%s) failed", job.code, follow.__qualname__)
    if job.queue == GPU_QUEUE:
        transaction.on_commit(lambda: gpu_dispatch(line_moved=True))  # a GPU slot is free again, or the line shorter
    elif left_the_line:
        transaction.on_commit(lambda: queue_publish(queue=job.queue))
    return True


def _parent_follow(job: Job) -> None:
    """A parent job (a pipeline) lives by its steps: a step that did not succeed ends it the same way, and a parent
    asked to cancel ends once its running step has stopped. Its next step is its own job type's business."""
    parent = job.parent
    if parent is None:
        return
    parent.refresh_from_db()
    if parent.is_final:
        return
    if job.status != Job.Status.SUCCEEDED:
        status = Job.Status.CANCELLED if job.status == Job.Status.CANCELLED else Job.Status.FAILED
        job_finish(job=parent, status=status, error=job.error,
                   error_message=f"{job.title}: {job.error_message}" if job.error_message else "")
    elif parent.cancel_requested_at:
        job_finish(job=parent, status=Job.Status.CANCELLED)


def job_cancel(*, job: Job) -> Job:
    """Cancel in tiers: a queued job ends at once (its message is revoked); a running one is asked to stop."""
    from garage.celery import app

    if job.is_final:
        return job
    for child in job.children.exclude(status__in=Job.FINAL):
        job_cancel(job=child)
    if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(cancel_requested_at=timezone.now()):
        if job.celery_task_id:
            try:
                app.control.revoke(job.celery_task_id)
            except BROKER_ERRORS:
                pass  # only spares the worker a message: the row is cancelled, and a cancelled row is never claimed
        job.refresh_from_db()
        job_finish(job=job, status=Job.Status.CANCELLED)
        return job
    Job.objects.filter(pk=job.pk, cancel_requested_at__isnull=True).update(cancel_requested_at=timezone.now())
    job.refresh_from_db()
    if job.children.exists() and not job.children.exclude(status__in=Job.FINAL).exists():
        # A parent runs nothing itself: with no step left to stop, it ends now.
        job_finish(job=job, status=Job.Status.CANCELLED)
    else:
        job_event_add(job=job, type=JobEvent.Type.LOG, data={"line": "Cancel requested; stopping at the next step."})
    return job


def job_retry(*, job: Job) -> Job:
    """Run a failed or cancelled job again with the same config, keeping its history. A job made of steps (a
    pipeline) is not run again as a whole: ValidationError, pointing at its steps."""
    if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        return job
    if not job_retryable(job=job):
        raise ValidationError("A job made of steps is not run again as a whole: retry the step that failed, on its "
                              "own page.")
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.QUEUED, progress=0.0, phase="", message="", error="", error_message="",
        cancel_requested_at=None, started_at=None, finished_at=None, result={},
    )
    job.refresh_from_db()
    _status_event(job, "Queued again")
    job_enqueue(job)
    return job


def job_heartbeat(*, job_id: int) -> None:
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())


def _has_checkpoint(job: Job) -> bool:
    return job.events.filter(type=JobEvent.Type.LOG, data__has_key="checkpoint_step").exists()


def jobs_resend_lost() -> int:
    """Send again the queued jobs whose message is lost: handed to the broker more than GARAGE_QUEUED_RESEND_AFTER
    seconds ago (or never, when the send failed), not claimed, and no longer held by the broker (a Redis restarted
    without its file, a send that failed). Each gets a new task id first, by a conditional update on the old one, so
    the old message can never claim the row should it turn up. A GPU job goes back to waiting for a slot instead, so
    that it stops holding one; the dispatcher gives it its new id. Returns how many."""
    before = timezone.now() - timedelta(seconds=settings.GARAGE_QUEUED_RESEND_AFTER)
    lost = list(Job.objects.filter(status=Job.Status.QUEUED).exclude(celery_task_id="")
                .filter(Q(sent_at__lt=before) | Q(sent_at__isnull=True)))
    if not lost:
        return 0
    try:
        held = task_ids_in_broker({job.queue for job in lost})
    except BROKER_ERRORS as exc:
        logger.warning("The broker does not answer (%s); lost job messages are sent on a later run", exc)
        return 0
    resent = 0
    for job in lost:
        if job.celery_task_id in held:
            continue  # waiting behind long jobs, not lost: sending it again would only move it to the back of the line
        still_queued = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, celery_task_id=job.celery_task_id)
        if job.queue == GPU_QUEUE:
            if still_queued.update(celery_task_id="", sent_at=None):
                logger.warning("The message of GPU job %s was lost; it waits for a slot again", job.code)
                resent += 1
            continue
        task_id = str(uuid.uuid4())
        if still_queued.update(celery_task_id=task_id, sent_at=timezone.now()):
            logger.warning("The message of job %s was lost; sending it again", job.code)
            _job_send(job_id=job.pk, kind=job.kind, queue=job.queue, task_id=task_id)
            resent += 1
    return resent


def jobs_reap() -> int:
    """Handle running jobs whose worker stopped sending heartbeats: a resumable job with a checkpoint is
    queued again (up to GARAGE_MAX_ATTEMPTS runs) and continues from it; any other is failed. Then send again the
    queued jobs whose message was lost (jobs_resend_lost). Returns how many jobs were handled."""
    stale_before = timezone.now() - timedelta(seconds=settings.GARAGE_STALE_AFTER)
    reaped = 0
    # A parent job (a pipeline) has no worker and no heartbeat of its own: its steps are reaped, and it follows them.
    for job in Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=stale_before).exclude(children__isnull=False):
        if job.kind in Job.RESUMABLE and job.attempts < settings.GARAGE_MAX_ATTEMPTS and _has_checkpoint(job):
            if Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(status=Job.Status.QUEUED, heartbeat_at=None):
                job.refresh_from_db()
                _status_event(job, "The worker stopped; continuing from the last checkpoint")
                job_enqueue(job)
                logger.warning("Re-queued job %s from its checkpoint", job.code)
                reaped += 1
            continue
        if job_finish(job=job, status=Job.Status.FAILED, error=f"No heartbeat since {job.heartbeat_at.isoformat()}",
                      error_message="The worker running this job stopped unexpectedly. You can retry it."):
            logger.warning("Reaped job %s: its worker stopped", job.code)
            reaped += 1
    return reaped + jobs_resend_lost()
