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
    FineTune.objects.filter(pk=finetune.pk).update(metrics={"em_after": 1.0, "heldout_examples": 0})  # as training does
    job_finish(job=train, status=Job.Status.SUCCEEDED, result={"em_after": 1.0})
    pipeline.refresh_from_db()
    # One pair holds nothing out: no evaluation step, the pipeline ends with its training and says nothing was measured.
    assert pipeline.status == Job.Status.SUCCEEDED and pipeline.result["em_after"] == 1.0 and pipeline.result["documents"] == 2
    assert pipeline.result["base_model"] == "tiny-gemma3" and pipeline.result["recall_before"] is None
    assert not pipeline.children.filter(kind=Job.Kind.EVALUATE).exists()


def test_it_evaluates_recall_unseen_and_control_as_its_last_step(alice):
    from apps.evaluation.models import HeldoutEvaluation

    pipeline = _start(alice, "a.txt")
    job_finish(job=pipeline.children.get(), status=Job.Status.SUCCEEDED)
    QAPair.objects.bulk_create(QAPair(dataset_id=pipeline.config["dataset"], question=f"Where is town {i}?",
                                      answer=f"Valley {i}", fact=f"town-{i}") for i in range(10))
    job_finish(job=pipeline.children.get(kind=Job.Kind.GENERATE), status=Job.Status.SUCCEEDED)
    train = pipeline.children.get(kind=Job.Kind.TRAIN)
    finetune = FineTune.objects.get(job=train)
    FineTune.objects.filter(pk=finetune.pk).update(artifact="x/adapter.zip", metrics={"heldout_examples": 1})
    job_finish(job=train, status=Job.Status.SUCCEEDED)
    pipeline.refresh_from_db()
    evaluate = pipeline.children.get(kind=Job.Kind.EVALUATE)
    assert pipeline.status == Job.Status.RUNNING and evaluate.config["pipeline_span"] == [0.85, 1.0]
    assert HeldoutEvaluation.objects.filter(finetune=finetune).count() == 1  # not a second, automatic one
    figures = {"n": 1, "token_f1": {"base": 0.1, "tuned": 0.6}, "exact_match": {"base": 0.0, "tuned": 0.5}}
    FineTune.objects.filter(pk=finetune.pk).update(metrics={"heldout_examples": 1, "evaluation": {
        "recall": figures, "unseen": None, "control": {**figures, "token_f1": {"base": 0.9, "tuned": 0.85}}}})
    job_finish(job=evaluate, status=Job.Status.SUCCEEDED)
    pipeline.refresh_from_db()
    assert pipeline.status == Job.Status.SUCCEEDED
    assert (pipeline.result["recall_before"], pipeline.result["recall_after"]) == (0.1, 0.6)
    assert (pipeline.result["unseen_before"], pipeline.result["unseen_after"]) == (None, None)
    assert (pipeline.result["control_before"], pipeline.result["control_after"]) == (0.9, 0.85)


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


def test_it_says_no_question_could_be_made_and_keeps_no_empty_version(alice):
    from apps.datasets.models import DatasetVersion

    pipeline = _start(alice, "notes.txt")
    job_finish(job=pipeline.children.get(), status=Job.Status.SUCCEEDED)
    job_finish(job=pipeline.children.get(kind=Job.Kind.GENERATE), status=Job.Status.SUCCEEDED)  # it made no pair
    pipeline.refresh_from_db()
    assert pipeline.status == Job.Status.FAILED
    assert pipeline.error_message.startswith("No question could be made from notes.txt")
    assert not DatasetVersion.objects.exists() and not pipeline.children.filter(kind=Job.Kind.TRAIN).exists()


def test_it_logs_why_it_trains_as_it_does_and_warns_about_too_few_pairs(alice):
    from apps.core.models import JobEvent

    pipeline = _start(alice, "a.txt")
    job_finish(job=pipeline.children.get(), status=Job.Status.SUCCEEDED)
    QAPair.objects.create(dataset_id=pipeline.config["dataset"], question="What is the capital?", answer="Eldhavn.")
    job_finish(job=pipeline.children.get(kind=Job.Kind.GENERATE), status=Job.Status.SUCCEEDED)
    lines = [e.data["line"] for e in pipeline.events.filter(type=JobEvent.Type.LOG)]
    assert any(line.startswith("Only 1 pair") for line in lines), lines
    assert any("epoch" in line for line in lines) and pipeline.children.filter(kind=Job.Kind.TRAIN).exists()
