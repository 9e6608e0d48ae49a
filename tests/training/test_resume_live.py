"""A training whose worker is killed continues from its last checkpoint on another worker."""
import os
import signal

import pytest
from django.db import transaction

from apps.core.models import Job
from apps.core.services import job_enqueue, jobs_reap
from apps.datasets.models import QAPair
from apps.datasets.services import dataset_create
from apps.training.models import FineTune
from apps.training.services import finetune_create_from_dataset
from tests.live import celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
QUEUE = "resume-test"  # its own queue, so only the workers of this test take the job


def last_checkpoint(job):
    event = job.events.filter(data__has_key="checkpoint_step").order_by("-id").first()
    return event.data["checkpoint_step"] if event else 0


@pytest.mark.timeout(240)
def test_it_continues_a_killed_training_from_its_last_checkpoint(alice, settings):
    dataset = dataset_create(owner=alice, name="facts")
    QAPair.objects.bulk_create(QAPair(dataset=dataset, question=f"What is fact {i}?", answer=f"Fact {i} is {i * 7}.")
                               for i in range(12))
    with transaction.atomic():  # moved to this test's queue before the GPU dispatcher could see it
        finetune = finetune_create_from_dataset(owner=alice, base_model="tiny-gemma3", dataset=dataset,
                                                options={"max_steps": 100, "batch_size": 4, "checkpoint_every": 20})
        Job.objects.filter(pk=finetune.job.pk).update(queue=QUEUE)
    job = Job.objects.get(pk=finetune.job.pk)
    job_enqueue(job)
    with celery_worker(queues=QUEUE, concurrency=1, name="resume-a", GARAGE_HEARTBEAT_SECONDS=1) as process:
        wait_for(lambda: last_checkpoint(job) >= 20, 120, interval=0.2, what="a checkpoint")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = job.events.filter(type="metric").order_by("-id").first().data["step"]
    checkpoint = last_checkpoint(job)
    settings.GARAGE_STALE_AFTER = 2
    wait_for(lambda: jobs_reap() or Job.objects.get(pk=job.pk).status != Job.Status.RUNNING, 30, interval=0.5,
             what="the reaper")
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED
    first_event_of_second_run = job.events.order_by("-id").first().id
    with celery_worker(queues=QUEUE, concurrency=1, name="resume-b"):
        wait_for(lambda: Job.objects.get(pk=job.pk).is_final, 180, interval=0.5, what="the resumed training")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.attempts == 2 and job.result["resumed_from_step"] == checkpoint <= killed_at
    steps = [e.data["step"] for e in job.events.filter(type="metric", id__gt=first_event_of_second_run).order_by("id")
             if "loss" in e.data]  # training steps; the held-out loss comes as its own metric
    assert steps == list(range(checkpoint + 1, 101))
    assert FineTune.objects.get(pk=finetune.pk).metrics["train_steps"] == 100
