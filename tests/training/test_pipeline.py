"""The pipeline's state machine, driven by finishing its steps by hand (no worker)."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.core.services import job_finish
from apps.datasets.models import QAPair
from apps.training.models import FineTune
from apps.training.pipeline import pipeline_start

pytestmark = pytest.mark.django_db


def _start(alice, *names):
    files = [SimpleUploadedFile(name, b"The capital of the valley is Eldhavn.") for name in names]
    return pipeline_start(owner=alice, files=files, name="Valley", base_model="tiny-gemma3")


def test_it_waits_for_every_document_then_generates_then_trains(alice):
    pipeline = _start(alice, "a.txt", "b.txt")
    first, second = pipeline.children.order_by("id")
    assert pipeline.status == Job.Status.RUNNING and first.config["pipeline_span"] == [0.0, 0.05]
    job_finish(job=first, status=Job.Status.SUCCEEDED)
    assert not pipeline.children.filter(kind=Job.Kind.GENERATE).exists()
    job_finish(job=second, status=Job.Status.SUCCEEDED)
    generate = pipeline.children.get(kind=Job.Kind.GENERATE)
    assert generate.config["pipeline_span"] == [0.05, 0.1]
    QAPair.objects.create(dataset_id=pipeline.config["dataset"], question="What is the capital?", answer="Eldhavn.")
    job_finish(job=generate, status=Job.Status.SUCCEEDED)
    train = pipeline.children.get(kind=Job.Kind.TRAIN)
    finetune = FineTune.objects.get(job=train)
    assert train.queue == "gpu" and finetune.version.example_count == 1 and finetune.version.number == 1
    job_finish(job=train, status=Job.Status.SUCCEEDED, result={"em_after": 1.0})
    pipeline.refresh_from_db()
    assert pipeline.status == Job.Status.SUCCEEDED and pipeline.result["em_after"] == 1.0 and pipeline.result["documents"] == 2


def test_it_fails_with_the_steps_readable_error(alice):
    pipeline = _start(alice, "a.txt")
    job_finish(job=pipeline.children.get(), status=Job.Status.FAILED, error_message="This document contains no text.")
    pipeline.refresh_from_db()
    assert pipeline.status == Job.Status.FAILED
    assert pipeline.error_message == "Extract a.txt: This document contains no text."


def test_it_fails_readably_when_the_next_step_cannot_start(alice, monkeypatch):
    from django.core.exceptions import ValidationError

    def refuse(**kwargs):
        raise ValidationError("No room for another job.")

    monkeypatch.setattr("apps.training.pipeline.qa_generate_start", refuse)
    pipeline = _start(alice, "a.txt")
    job_finish(job=pipeline.children.get(), status=Job.Status.SUCCEEDED)
    pipeline.refresh_from_db()
    assert pipeline.status == Job.Status.FAILED and pipeline.error_message == "No room for another job."


def test_it_cancels_the_running_step_with_the_pipeline(alice):
    from apps.core.services import job_cancel

    pipeline = _start(alice, "a.txt")
    job_cancel(job=pipeline)
    pipeline.refresh_from_db()
    assert pipeline.children.get().status == Job.Status.CANCELLED
    assert pipeline.status == Job.Status.CANCELLED
