"""The job state machine, without a worker: claims, final statuses, cancel, retry, reaping."""
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Job, JobEvent
from apps.core.services import job_cancel, job_claim, job_create, job_finish, job_retry, jobs_reap
from tests.live import queues_taken_from_running_workers

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


def test_it_shortens_a_title_longer_than_its_column(alice):
    job = _job(alice, title="Fine-tune " + "n" * 300)
    job.refresh_from_db()
    assert len(job.title) == 200 and job.title.startswith("Fine-tune nnn") and job.title.endswith("…")


def test_it_keeps_events_whose_text_holds_nul_characters(alice):
    from apps.core.services import job_event_add

    job = _job(alice)
    event = job_event_add(job=job, type=JobEvent.Type.METRIC, data={"samples": [{"completion": "a\x00b"}], "k\x00": 1},
                          message="half\x00way")
    event.refresh_from_db()
    job.refresh_from_db()
    assert event.data == {"samples": [{"completion": "ab"}], "k": 1} and job.message == "halfway"


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


# Lost broker messages: the real Redis (REDIS_URL) holds the messages; a queue no worker reads keeps them in line.
LINE = "resend-test"


@pytest.fixture
def broker():
    """The broker's Redis, its queues LINE and gpu emptied, and no running worker taking from them: a message these
    tests send stays in the broker until they remove it."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(LINE, "gpu")
    with queues_taken_from_running_workers([LINE, "gpu"]):
        yield client
    client.delete(LINE, "gpu")


def _sent_long_ago(job, seconds=600):
    Job.objects.filter(pk=job.pk).update(sent_at=timezone.now() - timedelta(seconds=seconds))


def test_it_sends_a_lost_message_again_under_a_new_task_id_that_alone_may_claim(alice, broker, settings,
                                                                              django_capture_on_commit_callbacks):
    from apps.core.broker import task_ids_in_broker

    settings.GARAGE_QUEUED_RESEND_AFTER = 60
    with django_capture_on_commit_callbacks(execute=True):
        lost = job_create(owner=alice, kind=Job.Kind.SLEEP, queue=LINE)
    old_task = lost.celery_task_id
    assert old_task in task_ids_in_broker([LINE])
    broker.delete(LINE)  # the message is lost (a Redis restarted without its file)
    assert jobs_reap() == 0  # not yet: it was sent a moment ago
    _sent_long_ago(lost)
    assert jobs_reap() == 1
    lost.refresh_from_db()
    assert lost.status == Job.Status.QUEUED and lost.celery_task_id != old_task
    held = task_ids_in_broker([LINE])
    assert lost.celery_task_id in held and old_task not in held and broker.llen(LINE) == 1
    assert job_claim(job_id=lost.pk, task_id=old_task, worker="w") is None  # the old message, turning up late
    assert job_claim(job_id=lost.pk, task_id=lost.celery_task_id, worker="w").status == Job.Status.RUNNING


def test_it_leaves_a_message_that_still_waits_in_line_where_it_is(alice, broker, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.GARAGE_QUEUED_RESEND_AFTER = 60
    with django_capture_on_commit_callbacks(execute=True):
        waiting = job_create(owner=alice, kind=Job.Kind.SLEEP, queue=LINE)
    _sent_long_ago(waiting, seconds=3600)  # behind hours of other work, but not lost
    assert jobs_reap() == 0
    assert Job.objects.get(pk=waiting.pk).celery_task_id == waiting.celery_task_id
    assert broker.llen(LINE) == 1


def test_it_frees_the_gpu_slot_of_a_lost_gpu_message_and_dispatches_it_again(alice, broker, settings,
                                                                            django_capture_on_commit_callbacks):
    from apps.core.scheduling import gpu_dispatch

    settings.GARAGE_QUEUED_RESEND_AFTER, settings.GARAGE_GPU_SLOTS = 60, 1
    with django_capture_on_commit_callbacks(execute=True):
        lost = job_create(owner=alice, kind=Job.Kind.SLEEP, queue="gpu")
        other = job_create(owner=alice, kind=Job.Kind.SLEEP, queue="gpu")
    lost.refresh_from_db()
    old_task = lost.celery_task_id
    assert old_task and not Job.objects.get(pk=other.pk).celery_task_id  # the only slot is taken
    broker.delete("gpu")
    _sent_long_ago(lost)
    assert jobs_reap() == 1
    assert Job.objects.get(pk=lost.pk).celery_task_id == ""  # waiting again: it holds no slot
    assert gpu_dispatch() == 1  # the oldest waiting job goes first, under a new id
    lost.refresh_from_db()
    assert lost.celery_task_id not in ("", old_task) and not Job.objects.get(pk=other.pk).celery_task_id
    assert job_claim(job_id=lost.pk, task_id=old_task, worker="w") is None
