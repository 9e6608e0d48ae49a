"""Fair GPU scheduling: waiting order, free slots, per-user limits, queue positions."""
import pytest
from django.utils import timezone

from apps.core.models import Job
from apps.core.scheduling import gpu_dispatch
from apps.core.selectors import gpu_waiting_order, job_queue_position, job_waiting, waiting_state
from apps.core.services import job_create, job_finish

pytestmark = pytest.mark.django_db


@pytest.fixture
def gpu_jobs(alice, bob, settings):
    settings.GARAGE_GPU_SLOTS = 0  # nothing is sent until a test opens slots
    alices = [job_create(owner=alice, kind=Job.Kind.SLEEP, queue="gpu", title=f"a{i}") for i in range(3)]
    bobs = job_create(owner=bob, kind=Job.Kind.SLEEP, queue="gpu", title="b0")
    return alices, bobs


def test_it_interleaves_users_so_one_users_many_jobs_do_not_starve_another(gpu_jobs):
    alices, bobs = gpu_jobs
    assert [j.title for j in gpu_waiting_order()] == ["a0", "b0", "a1", "a2"]
    assert job_queue_position(job=bobs) == 2 and job_queue_position(job=alices[2]) == 4


def test_it_sends_only_as_many_jobs_as_there_are_free_slots(gpu_jobs, settings, django_capture_on_commit_callbacks):
    alices, bobs = gpu_jobs
    settings.GARAGE_GPU_SLOTS = 1
    assert gpu_dispatch() == 1 and gpu_dispatch() == 0
    assert Job.objects.get(pk=alices[0].pk).celery_task_id and job_queue_position(job=alices[0]) is None
    Job.objects.filter(pk=alices[0].pk).update(status=Job.Status.RUNNING, started_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        job_finish(job=alices[0], status=Job.Status.SUCCEEDED)  # frees the slot: bob's job goes next
    assert Job.objects.get(pk=bobs.pk).celery_task_id
    assert not Job.objects.get(pk=alices[1].pk).celery_task_id


def test_it_keeps_each_user_under_the_per_user_limit(gpu_jobs, settings):
    alices, bobs = gpu_jobs
    settings.GARAGE_GPU_SLOTS, settings.GARAGE_GPU_JOBS_PER_USER = 3, 1
    assert gpu_dispatch() == 2
    dispatched = set(Job.objects.exclude(celery_task_id="").values_list("title", flat=True))
    assert dispatched == {"a0", "b0"}


def test_it_tells_a_waiting_gpu_job_how_many_are_ahead_and_why(gpu_jobs, settings):
    alices, bobs = gpu_jobs
    assert job_waiting(job=alices[0]) == {"ahead": 0, "text": "Next in line; waiting for a free GPU."}
    assert job_waiting(job=bobs) == {"ahead": 1, "text": "1 job ahead of yours; waiting for a free GPU."}
    settings.GARAGE_GPU_SLOTS = 2
    assert gpu_dispatch() == 2  # a0 and b0; alice's next waits for her first (one GPU job per user at a time)
    assert job_waiting(job=alices[0]) == {"ahead": None,
                                          "text": "Handed to a GPU worker; it starts when the worker takes it."}
    assert job_waiting(job=alices[1]) == {"ahead": 0, "text": "Next in line; your other GPU job is running."}
    assert job_waiting(job=alices[2]) == {"ahead": 1, "text": "1 job ahead of yours; your other GPU job is running."}
    Job.objects.filter(pk=alices[0].pk).update(status=Job.Status.RUNNING)
    assert job_waiting(job=alices[0]) is None


def test_it_counts_other_lines_in_the_order_their_jobs_were_sent(alice, bob):
    first = job_create(owner=bob, kind=Job.Kind.SLEEP, queue="other", start=False)
    second = job_create(owner=alice, kind=Job.Kind.SLEEP, queue="other", start=False)
    assert job_waiting(job=second) == {"ahead": 1, "text": "1 job ahead of yours; waiting for a free worker."}
    Job.objects.filter(pk=first.pk).update(sent_at=timezone.now())  # retried: its new message is behind
    assert job_waiting(job=second)["ahead"] == 0 and job_queue_position(job=Job.objects.get(pk=first.pk)) == 2


def test_it_stops_counting_far_back_in_a_long_line():
    assert waiting_state(position=52, reason="waiting for a free worker") == {
        "ahead": None, "text": "More than 50 jobs ahead of yours; waiting for a free worker."}
    assert waiting_state(position=51, reason="x")["ahead"] == 50
