"""A queued job's panel learns its new place in line over its websocket as other jobs leave, start or join the line."""
import json

import pytest

from apps.core.models import Job
from apps.core.services import job_cancel, job_claim, job_create
from tests.core.test_live import ws_connect

pytestmark = pytest.mark.django_db(transaction=True)


def next_waiting(ws, timeout=10):
    """The place in line that the job's next message carries."""
    return json.loads(ws.recv(timeout=timeout))["job"]["waiting"]


def test_it_moves_a_queued_job_up_as_the_jobs_ahead_leave_or_start(alice, bob, server, session_cookie):
    # A line that no worker serves, so that only the test moves it.
    first, second, third = (job_create(owner=owner, kind=Job.Kind.SLEEP, queue="waiting-room", start=False)
                            for owner in (bob, bob, alice))
    with ws_connect(server, f"/ws/jobs/{third.code}/", session_cookie(alice)) as ws:
        assert next_waiting(ws) == {"ahead": 2, "text": "2 jobs ahead of yours; waiting for a free worker."}
        job_cancel(job=first)  # leaves the line without running
        assert next_waiting(ws) == {"ahead": 1, "text": "1 job ahead of yours; waiting for a free worker."}
        Job.objects.filter(pk=second.pk).update(celery_task_id="task-2")
        job_claim(job_id=second.pk, task_id="task-2", worker="test")  # a worker takes it
        assert next_waiting(ws) == {"ahead": 0, "text": "Next in line; waiting for a free worker."}


def test_it_moves_a_waiting_gpu_job_back_when_another_users_job_goes_before_it(alice, bob, server, session_cookie,
                                                                                settings):
    settings.GARAGE_GPU_SLOTS = 0  # every GPU is busy: jobs wait in the fair order
    alices = [job_create(owner=alice, kind=Job.Kind.SLEEP, queue="gpu") for _ in range(2)]
    with ws_connect(server, f"/ws/jobs/{alices[1].code}/", session_cookie(alice)) as ws:
        assert next_waiting(ws)["ahead"] == 1
        job_create(owner=bob, kind=Job.Kind.SLEEP, queue="gpu")  # bob's first job goes before alice's second
        assert next_waiting(ws) == {"ahead": 2, "text": "2 jobs ahead of yours; waiting for a free GPU."}
