"""The job state machine, without a worker: claims, final statuses, cancel, retry, reaping."""
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Job, JobEvent
from apps.core.services import job_cancel, job_claim, job_create, job_finish, job_retry, jobs_reap

pytestmark = pytest.mark.django_db


def _job(owner, **kwargs):
    return job_create(owner=owner, kind=Job.Kind.SLEEP, start=False, **kwargs)


def test_it_claims_a_queued_job_only_once_and_only_for_its_task(alice):
    job = _job(alice)
    Job.objects.filter(pk=job.pk).update(celery_task_id="t1")
    assert job_claim(job_id=job.pk, task_id="other", worker="w") is None
    claimed = job_claim(job_id=job.pk, task_id="t1", worker="w")
    assert claimed.status == Job.Status.RUNNING and claimed.attempts == 1 and claimed.started_at
    assert job_claim(job_id=job.pk, task_id="t1", worker="w") is None


def test_it_ends_a_job_in_exactly_one_final_status(alice):
    job = _job(alice)
    assert job_finish(job=job, status=Job.Status.SUCCEEDED, result={"x": 1})
    assert not job_finish(job=job, status=Job.Status.FAILED, error_message="late")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.result == {"x": 1} and job.progress == 1.0
    statuses = [e.data["status"] for e in job.events.filter(type=JobEvent.Type.STATUS)]
    assert statuses == ["queued", "succeeded"]


def test_it_cancels_a_queued_job_at_once(alice):
    job = _job(alice)
    job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.cancel_requested_at


def test_it_asks_a_running_job_to_stop(alice):
    job = _job(alice)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    job.refresh_from_db()
    job_cancel(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.cancel_requested_at is not None


def test_it_retries_a_failed_job_with_the_same_config(alice, django_capture_on_commit_callbacks):
    job = _job(alice, config={"steps": 3})
    job_finish(job=job, status=Job.Status.FAILED, error_message="boom")
    old_task = job.celery_task_id
    with django_capture_on_commit_callbacks() as callbacks:
        job_retry(job=job)
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.error_message == "" and job.config == {"steps": 3}
    assert job.celery_task_id and job.celery_task_id != old_task
    assert len(callbacks) == 1  # the task is sent once the transaction commits


def test_it_reaps_running_jobs_without_heartbeat(alice, settings):
    settings.GARAGE_STALE_AFTER = 60
    stale, fresh = _job(alice), _job(alice)
    Job.objects.filter(pk=stale.pk).update(status=Job.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5))
    Job.objects.filter(pk=fresh.pk).update(status=Job.Status.RUNNING, heartbeat_at=timezone.now())
    assert jobs_reap() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == Job.Status.FAILED and "stopped unexpectedly" in stale.error_message
    assert fresh.status == Job.Status.RUNNING


def _stale_running(owner, kind, attempts=1, checkpoint=False):
    job = job_create(owner=owner, kind=kind, start=False)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, attempts=attempts,
                                         heartbeat_at=timezone.now() - timedelta(minutes=5))
    if checkpoint:
        JobEvent.objects.create(job=job, type=JobEvent.Type.LOG, data={"line": "saved", "checkpoint_step": 50})
    return job


def test_it_requeues_a_dead_training_that_has_a_checkpoint(alice, settings, django_capture_on_commit_callbacks):
    settings.GARAGE_STALE_AFTER, settings.GARAGE_MAX_ATTEMPTS = 60, 3
    resumable = _stale_running(alice, Job.Kind.TRAIN, checkpoint=True)
    no_checkpoint = _stale_running(alice, Job.Kind.TRAIN)
    too_many = _stale_running(alice, Job.Kind.TRAIN, attempts=3, checkpoint=True)
    not_resumable = _stale_running(alice, Job.Kind.SLEEP, checkpoint=True)
    old_task = resumable.celery_task_id
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert jobs_reap() == 4
    statuses = {j.pk: Job.objects.get(pk=j.pk).status for j in (resumable, no_checkpoint, too_many, not_resumable)}
    assert statuses == {resumable.pk: "queued", no_checkpoint.pk: "failed", too_many.pk: "failed", not_resumable.pk: "failed"}
    resumable.refresh_from_db()
    assert resumable.celery_task_id != old_task and len(callbacks) == 1
