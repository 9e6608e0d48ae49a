"""The job system with real parts: a Celery worker process, Redis, the ASGI server and a websocket client."""
import json
import os
import signal
from pathlib import Path

import pytest
from websockets.sync.client import connect

from apps.core.models import Job
from apps.core.services import job_create, jobs_reap
from tests.live import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "lumen-valley-field-guide.md"


def ws_connect(server, path, cookie):
    return connect(server.replace("http", "ws", 1) + path, additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server},
                   open_timeout=10)


def collect_until_final(ws, timeout=120):
    """Messages from a job websocket until the job reaches a final status."""
    messages = []
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        messages.append(message)
        if message["job"]["status"] in {"succeeded", "failed", "cancelled"}:
            return messages


def test_it_runs_the_pipeline_started_through_the_api_and_streams_progress_in_order(alice, alice_api, worker, server, session_cookie):
    with SAMPLE.open("rb") as handle:
        response = alice_api.post("/api/v1/pipelines/", {"name": "Lumen", "files": [handle], "base_model": "tiny-gemma3"},
                                  format="multipart")
    assert response.status_code == 202, response.content
    code = response.json()["code"]
    with ws_connect(server, f"/ws/jobs/{code}/", session_cookie(alice)) as ws:
        messages = collect_until_final(ws)
    assert messages[0]["type"] == "snapshot"
    snapshot_ids = [e["id"] for e in messages[0]["events"]]
    updates = [m["event"] for m in messages[1:] if m["event"]]
    update_ids = [e["id"] for e in updates]
    # Updates arrive in the order they happened; the snapshot may overlap them (the client skips what it drew),
    # and together they miss nothing the database recorded.
    assert update_ids == sorted(set(update_ids)) and snapshot_ids == sorted(snapshot_ids)
    assert set(snapshot_ids) | set(update_ids) == set(Job.objects.get(code=code).events.values_list("id", flat=True))
    events = {e["id"]: e for e in messages[0]["events"] + updates}
    steps = [events[i]["data"]["step"] for i in sorted(events)
             if events[i]["type"] == "metric" and "loss" in events[i]["data"]]  # training steps, not the held-out loss
    assert steps == list(range(1, 121))
    progress = [m["job"]["progress"] for m in messages]
    assert progress == sorted(progress) and progress[-1] == 1.0
    job = Job.objects.get(code=code)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.result["em_after"] >= 0.9 > 0.1 >= job.result["em_before"]
    download = alice_api.get(f"/api/v1/finetunes/{job.result['finetune']}/download/")
    assert download.status_code == 200 and b"".join(download.streaming_content)[:2] == b"PK"


def test_it_refuses_a_strangers_websocket(alice, bob, server, session_cookie):
    job = job_create(owner=alice, kind=Job.Kind.SLEEP, start=False)
    with pytest.raises(Exception) as refused, ws_connect(server, f"/ws/jobs/{job.code}/", session_cookie(bob)) as ws:
        ws.recv(timeout=5)
    assert "4404" in str(refused.value) or "403" in str(refused.value)
    with ws_connect(server, f"/ws/jobs/{job.code}/", session_cookie(alice)) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"


def test_it_cancels_a_running_training_within_a_few_steps(alice, alice_api, worker):
    from apps.datasets.models import QAPair
    from apps.datasets.services import dataset_create
    from apps.training.services import finetune_create_from_dataset

    dataset = dataset_create(owner=alice, name="facts")
    QAPair.objects.bulk_create(QAPair(dataset=dataset, question=f"What is fact {i}?", answer=f"Fact {i} is {i * 7}.") for i in range(20))
    finetune = finetune_create_from_dataset(owner=alice, base_model="tiny-gemma3", dataset=dataset, options={"max_steps": 5000})
    job = finetune.job

    def last_step():
        metric = job.events.filter(type="metric").order_by("-id").first()
        return metric.data["step"] if metric else 0

    wait_for(lambda: last_step() >= 3, 120, what="training to start")
    step_at_cancel = last_step()
    response = alice_api.post(f"/api/v1/jobs/{job.code}/cancel/")
    assert response.status_code == 202
    wait_for(lambda: Job.objects.get(pk=job.pk).is_final, 60, what="the job to stop")
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert last_step() - step_at_cancel <= 10


def test_it_reaps_a_job_whose_worker_was_killed(alice, settings, django_db_setup):
    job = job_create(owner=alice, kind=Job.Kind.SLEEP, queue="doomed", config={"steps": 1000, "seconds": 0.1})
    with celery_worker(queues="doomed", concurrency=1, name="doomed", GARAGE_HEARTBEAT_SECONDS=1) as process:
        wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING, 60, what="the job to start")
        os.killpg(process.pid, signal.SIGKILL)  # the whole worker, children included, without warning
        process.wait()
    settings.GARAGE_STALE_AFTER = 2
    wait_for(lambda: jobs_reap() or Job.objects.get(pk=job.pk).is_final, 30, interval=0.5, what="the reaper")
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error_message == "The worker running this job stopped unexpectedly. You can retry it."


SEND_WHILE_REDIS_IS_DOWN = """
import json, django
django.setup()
from apps.accounts.models import User
from apps.core.services import job_create
owner = User.objects.get(pk={owner})
jobs = [job_create(owner=owner, kind="sleep", queue=queue, config={{"steps": 2, "seconds": 0.05}}) for queue in ("default", "gpu")]
print(json.dumps([job.pk for job in jobs]))
"""


def test_it_keeps_jobs_whose_send_failed_while_redis_was_down_and_runs_them_once_it_is_back(alice, worker, settings):
    import subprocess
    import sys

    from apps.core.scheduling import gpu_dispatch
    from tests.live import ROOT, child_env, free_port

    settings.GARAGE_GPU_SLOTS = 1
    # A web process whose broker is down: creating the jobs must neither fail nor lose them.
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run([sys.executable, "-c", SEND_WHILE_REDIS_IS_DOWN.format(owner=alice.pk)], cwd=ROOT,
                          env=child_env(REDIS_URL=dead_redis), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    default_job, gpu_job = (Job.objects.get(pk=pk) for pk in json.loads(done.stdout.strip().splitlines()[-1]))
    assert default_job.status == gpu_job.status == Job.Status.QUEUED
    assert default_job.celery_task_id and default_job.sent_at is None  # marked as unsent: the reaper's next run sends it
    assert gpu_job.celery_task_id == ""  # still waiting for a slot, not holding one
    # Redis is back: one reaper run (as workers.tasks.reap_jobs does it) sends both.
    assert jobs_reap() == 1
    assert gpu_dispatch() == 1
    for job in (default_job, gpu_job):
        wait_for(lambda: Job.objects.get(pk=job.pk).is_final, 60, what=f"job {job.pk} to run")
        assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED


def test_it_runs_workers_from_an_empty_folder_apart_from_the_uploads(worker, settings):
    import psutil

    from garage.celery import worker_directory
    from tests.live import ROOT

    processes = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
    # The main process and every pool process (not the short device measurement a gpu worker starts as it comes up).
    folders = {Path(process.cwd()) for process in processes if "celery" in process.cmdline()}
    assert folders == {worker_directory()}, folders
    media = Path(settings.MEDIA_ROOT).resolve()
    assert worker_directory() not in (ROOT, media) and media not in worker_directory().parents
    # No relative name of Hub-id shape (`a/b`, `..` included) reaches the uploads from there.
    assert (worker_directory() / ".." / "..").resolve() not in (media, *media.parents)


def test_it_reaps_on_its_own_queue_while_long_jobs_hold_every_default_slot(alice, settings, django_db_setup):
    from datetime import timedelta

    from django.utils import timezone

    from apps.core.services import job_cancel
    from workers.tasks import reap_jobs

    settings.GARAGE_STALE_AFTER = 60
    dead = job_create(owner=alice, kind=Job.Kind.SLEEP, start=False)
    Job.objects.filter(pk=dead.pk).update(status=Job.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5))
    control_log = Path(settings.VAR_DIR) / "worker-control.log"
    # As `garage run` starts them: two slots on `default`, a solo worker on `control`.
    with celery_worker(queues="default", concurrency=2, name="busy"), \
            celery_worker(queues="control", concurrency=1, pool="solo", name="control", log_path=control_log):
        pushes = [job_create(owner=alice, kind=Job.Kind.SLEEP, config={"steps": 600, "seconds": 0.1}) for _ in range(2)]
        wait_for(lambda: Job.objects.filter(pk__in=[p.pk for p in pushes], status=Job.Status.RUNNING).count() == 2, 60,
                 what="two long jobs to hold the default worker")
        try:
            reap_jobs.apply_async()  # as the schedule sends it
            wait_for(lambda: Job.objects.get(pk=dead.pk).is_final, 30, interval=0.2, what="the reaper")
            assert Job.objects.get(pk=dead.pk).status == Job.Status.FAILED
            assert "core.reap_jobs" in control_log.read_text()
        finally:
            for push in pushes:
                job_cancel(job=Job.objects.get(pk=push.pk))
            wait_for(lambda: not Job.objects.filter(pk__in=[p.pk for p in pushes]).exclude(status__in=Job.FINAL).exists(),
                     30, what="the long jobs to stop")


def recv_until(ws, done, timeout=10):
    """Messages from a websocket until `done(message)` holds for one of them."""
    messages = []
    while not messages or not done(messages[-1]):
        messages.append(json.loads(ws.recv(timeout=timeout)))
    return messages


def test_it_streams_each_user_only_their_own_jobs_on_the_list_socket(alice, bob, server, session_cookie):
    from apps.core.models import JobEvent
    from apps.core.services import job_cancel, job_event_add

    older = job_create(owner=alice, kind=Job.Kind.SLEEP, title="Alice's older job", start=False)
    bobs = job_create(owner=bob, kind=Job.Kind.SLEEP, title="Bob's job", start=False)
    with pytest.raises(Exception) as refused, ws_connect(server, "/ws/jobs/", "") as ws:
        ws.recv(timeout=5)
    assert "4401" in str(refused.value) or "403" in str(refused.value)  # nobody's list for a stranger

    with ws_connect(server, "/ws/jobs/?limit=5", session_cookie(alice)) as alice_ws, \
            ws_connect(server, "/ws/jobs/", session_cookie(bob)) as bob_ws:
        snapshot = json.loads(alice_ws.recv(timeout=5))
        assert snapshot["type"] == "snapshot" and [j["code"] for j in snapshot["jobs"]] == [str(older.code)]
        assert [j["code"] for j in json.loads(bob_ws.recv(timeout=5))["jobs"]] == [str(bobs.code)]

        # A new job appears at once; its progress and status follow; a step's metric (not drawn by lists) and a
        # pipeline step's own events (its parent carries them) do not travel, and Bob's job never reaches Alice.
        new = job_create(owner=alice, kind=Job.Kind.SLEEP, title="Alice's new job", start=False)
        child = job_create(owner=alice, kind=Job.Kind.SLEEP, parent=new, start=False)
        job_event_add(job=bobs, type=JobEvent.Type.PROGRESS, data={"fraction": 0.9}, progress=0.9)
        job_event_add(job=new, type=JobEvent.Type.METRIC, data={"step": 1, "loss": 1.0})
        job_event_add(job=child, type=JobEvent.Type.PROGRESS, data={"fraction": 0.5}, progress=0.5)
        job_event_add(job=new, type=JobEvent.Type.PROGRESS, data={"fraction": 0.25}, progress=0.25)
        job_cancel(job=new)
        updates = recv_until(alice_ws, lambda m: m["job"]["status"] == "cancelled")
        assert [(m["job"]["code"], m["job"]["status"], m["job"]["progress"]) for m in updates] == [
            (str(new.code), "queued", 0.0), (str(new.code), "queued", 0.25), (str(new.code), "cancelled", 0.25)]
        assert updates[0]["job"]["title"] == "Alice's new job"
        bob_updates = recv_until(bob_ws, lambda m: m["job"]["progress"] == 0.9)
        assert {m["job"]["code"] for m in bob_updates} == {str(bobs.code)}
        with pytest.raises(TimeoutError):
            alice_ws.recv(timeout=0.5)
