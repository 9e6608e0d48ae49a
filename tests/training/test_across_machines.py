"""The platform across machines: real Celery workers, each with a var folder of its own (standing for a machine of its
own), sharing PostgreSQL, Redis and an S3-compatible bucket (moto's server) as README's deployment describes. A
training killed on one machine is re-queued by the reaper and finished by another from the checkpoint in the bucket;
a GGUF export made on one machine is pushed to the (local) Hub from another; the web serves the adapter with no
worker's folder to read."""
import io
import shutil
import signal
import os
import zipfile
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from apps.core.models import Job
from apps.core.services import job_cancel, jobs_reap
from apps.evaluation.models import HeldoutEvaluation
from apps.hub.pushes import hub_push_start
from apps.training.exports import finetune_export_start
from apps.training.models import FineTune
from apps.training.services import finetune_create
from tests.evaluation.test_heldout import facts_version
from tests.fixtures.s3 import (BUCKET, s3_client, s3_empty, s3_environment, s3_keys, s3_server,  # noqa: F401
                               s3_storages)
from tests.hub.conftest import ALICE_HF, alice_connected, hub  # noqa: F401
from tests.live import celery_worker, queues_taken_from_running_workers, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# The queues a machine's worker takes here: GPU work (training, exports) and the rest (pushes).
QUEUES = ("gpu", "default")


@pytest.fixture
def machines(s3_server, settings, tmp_path):
    """Start workers standing for machines: `start(name)` gives a worker whose var folder is tmp_path/<name>, with
    the bucket's settings and the secrets every machine of a deployment shares. The session's own worker (when
    running) stops taking QUEUES meanwhile, so that only these machines run the jobs. The web (this process) keeps
    its files in a folder of its own."""
    client = s3_client(s3_server)
    client.create_bucket(Bucket=BUCKET)
    s3_storages(settings, s3_server)
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "web" / "artifacts"

    @contextmanager
    def start(name: str):
        var = tmp_path / name
        var.mkdir(exist_ok=True)
        with celery_worker(queues=",".join(QUEUES), concurrency=1, name=name, log_path=tmp_path / f"{name}.log",
                           GARAGE_VAR_DIR=var, SECRET_KEY=settings.SECRET_KEY, GARAGE_EVAL_CONTROL="false",
                           **s3_environment(s3_server)) as process:
            yield process

    try:
        with queues_taken_from_running_workers(QUEUES):
            yield start
    finally:
        s3_empty(client)


def _kill(process) -> None:
    """The machine is lost: its worker and the training it runs end at once, with no chance to tidy up."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _ended(job: Job, timeout: float) -> Job:
    wait_for(lambda: Job.objects.filter(pk=job.pk, status__in=Job.FINAL).exists(), timeout, interval=0.2,
             what=f"job {job.code} to end")
    job.refresh_from_db()
    return job


def test_a_training_lost_with_its_machine_finishes_on_another_from_the_bucket(
        machines, settings, tmp_path, alice, alice_client, hub, alice_connected):
    finetune = finetune_create(owner=alice, base_model="tiny-gemma3", version=facts_version(alice, 10, 0.3),
                               options={"max_steps": 3000, "checkpoint_every": 5, "document_text": False})
    job = finetune.job
    with machines("machine-a") as machine_a:
        # Machine A trains until its first checkpoint is in the bucket (the reaper resumes only from there) ...
        wait_for(lambda: job.events.filter(data__has_key="checkpoint_step").exists(), 240, interval=0.1,
                 what="the first checkpoint")
        _kill(machine_a)
    shutil.rmtree(tmp_path / "machine-a")  # ... and is lost with everything on its disk.
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.attempts == 1
    saved = job.events.filter(data__has_key="checkpoint_step").order_by("id").last().data["checkpoint_step"]
    # Its heartbeat stops; once it is older than GARAGE_STALE_AFTER the reaper queues the training again.
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.GARAGE_STALE_AFTER + 1))
    # A shorter training, so that machine B finishes soon (the step count reached travels in the checkpoint).
    steps = saved + 20
    FineTune.objects.filter(pk=finetune.pk).update(config={**finetune.config, "max_steps": steps})
    assert jobs_reap() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    requeued = job.events.order_by("-id").first().id
    with machines("machine-b"):
        job = _ended(job, 300)
        assert job.status == Job.Status.SUCCEEDED, job.error
        finetune.refresh_from_db()
        # It went on from the newest checkpoint in the bucket: the one reported last, or one whose report the kill cut.
        fetched = [int(line.split()[5]) for e in job.events.order_by("id") if (line := e.data.get("line", ""))
                   .startswith("Fetched the checkpoint of step")]
        assert len(fetched) == 1 and saved <= fetched[0] < steps and job.attempts == 2
        assert finetune.metrics["resumed_from_step"] == fetched[0] and finetune.metrics["train_steps"] == steps
        trained = [e.data["step"] for e in job.events.filter(type="metric", id__gt=requeued).order_by("id")
                   if "loss" in e.data]  # training steps; the held-out loss comes as a metric of its own
        assert trained == list(range(fetched[0] + 1, steps + 1))
        # The automatic held-out evaluation that follows is not what this test is about.
        for evaluation in HeldoutEvaluation.objects.filter(finetune=finetune):
            job_cancel(job=evaluation.job)
        export = _ended(finetune_export_start(finetune=finetune, kinds=["gguf_q8_0"]), 300)
        assert export.status == Job.Status.SUCCEEDED, export.error
    shutil.rmtree(tmp_path / "machine-b")

    # The web has no worker's folder: the owner downloads the adapter from the bucket.
    finetune.refresh_from_db()
    response = alice_client.get(f"/training/{finetune.code}/download/")
    assert response.status_code == 302
    with zipfile.ZipFile(io.BytesIO(httpx.get(response["Location"]).content)) as archive:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= set(archive.namelist())
    assert not (settings.GARAGE_ARTIFACTS_DIR / str(finetune.code)).exists()

    # A third machine pushes the GGUF file machine B made, taking it from the bucket.
    gguf = finetune.outputs["gguf_q8_0"]["files"][0]
    with machines("machine-c"):
        push = _ended(hub_push_start(finetune=finetune, repo="valley-gguf", what="gguf", confirm_worse=True), 120)
        assert push.status == Job.Status.SUCCEEDED, push.error
    bucket = s3_client(settings.STORAGES["artifacts"]["OPTIONS"]["endpoint_url"])
    stored = bucket.get_object(Bucket=BUCKET, Key=f"artifacts/outputs/gguf/{finetune.code}/exports/gguf-q8_0.zip")
    with zipfile.ZipFile(io.BytesIO(stored["Body"].read())) as archive:
        assert hub.file(f"{ALICE_HF}/valley-gguf", gguf) == archive.read(gguf)
