"""Fair GPU scheduling: waiting order, free slots, per-user limits, queue positions."""
import pytest
from django.utils import timezone

from apps.core.models import Job
from apps.core.scheduling import gpu_dispatch, gpu_waiting_order
from apps.core.selectors import job_queue_position
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
