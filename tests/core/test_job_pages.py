"""Job pages and panels: the way back to what a job belongs to, the Cancel question, and what an ended job no longer
says (the live side is in tests/core/test_job_browser.py)."""
import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core.models import Job
from apps.core.selectors import job_snapshot
from apps.core.services import job_cancel, job_create, job_event_add, job_finish
from apps.datasets.models import Dataset, DatasetVersion, Document
from apps.evaluation.models import BenchmarkRun, HeldoutEvaluation
from apps.prompts.models import OptimizedPrompt
from apps.rl.models import GrpoRun, RewardPreview
from apps.training.models import FineTune

pytestmark = pytest.mark.django_db


@pytest.fixture
def things(alice):
    """One of each thing a job can belong to, all alice's."""
    dataset = Dataset.objects.create(owner=alice, name="Valley facts")
    version = DatasetVersion.objects.create(owner=alice, dataset=dataset, number=1, example_count=20, heldout_count=5)
    finetune = FineTune.objects.create(owner=alice, dataset=dataset, version=version, name="Valley model",
                                       base_model="tiny-gemma3")
    return {
        "dataset": dataset, "finetune": finetune,
        "document": Document.objects.create(owner=alice, dataset=dataset, file="documents/guide.md",
                                            filename="guide.md"),
        "evaluation": HeldoutEvaluation.objects.create(owner=alice, finetune=finetune),
        "benchmark": BenchmarkRun.objects.create(owner=alice, name="Maths check", model_label="tiny-gemma3"),
        "grpo": GrpoRun.objects.create(owner=alice, name="Reasoner", base_model="tiny-gemma3"),
        "preview": RewardPreview.objects.create(owner=alice),
        "prompt": OptimizedPrompt.objects.create(owner=alice, name="Terse answers", budget=10, task_provider="default",
                                                 reflection_provider="default"),
    }


def test_it_links_every_job_page_back_to_what_the_job_belongs_to(alice, alice_client, things):
    dataset, finetune, document = things["dataset"], things["finetune"], things["document"]
    to_dataset = (reverse("datasets:detail", args=[dataset.code]), "the dataset “Valley facts”")
    to_model = (reverse("training:detail", args=[finetune.code]), "the model “Valley model”")
    cases = [
        (Job.Kind.GENERATE, {"dataset": dataset.pk}, to_dataset),
        (Job.Kind.CURATE, {"dataset": dataset.pk, "options": {}}, to_dataset),
        (Job.Kind.IMPORT, {"dataset": dataset.pk, "document": document.pk}, to_dataset),
        (Job.Kind.PIPELINE, {"dataset": dataset.pk}, to_dataset),
        (Job.Kind.EXTRACT, {"document": document.pk},
         (reverse("datasets:document", args=[document.code]), "the document “guide.md”")),
        (Job.Kind.TRAIN, {"finetune": finetune.pk}, to_model),
        (Job.Kind.EXPORT, {"finetune": finetune.pk, "kinds": ["card"]}, to_model),
        (Job.Kind.PUSH, {"finetune": finetune.pk}, to_model),
        (Job.Kind.EVALUATE, {"heldout_evaluation": things["evaluation"].pk, "finetune": finetune.pk},
         (reverse("evaluation:heldout", args=[things["evaluation"].code]),
          "the held-out evaluation of “Valley model”")),
        (Job.Kind.BENCHMARK, {"benchmark_run": things["benchmark"].pk},
         (reverse("evaluation:detail", args=[things["benchmark"].code]), "the benchmark “Maths check”")),
        (Job.Kind.GRPO, {"grpo_run": things["grpo"].pk},
         (reverse("rl:detail", args=[things["grpo"].code]), "the GRPO run “Reasoner”")),
        (Job.Kind.GRPO, {"reward_preview": things["preview"].pk},
         (reverse("rl:preview", args=[things["preview"].code]), "the reward preview")),
        (Job.Kind.OPTIMIZE_PROMPT, {"optimized_prompt": things["prompt"].pk},
         (reverse("prompts:detail", args=[things["prompt"].code]), "the prompt optimization “Terse answers”")),
    ]
    for kind, config, (url, label) in cases:
        job = job_create(owner=alice, kind=kind, config=config, start=False)
        page = alice_client.get(f"/jobs/{job.code}/").content.decode()
        assert f'<a href="{url}" data-role="back">← Back to {label}</a>' in page, kind


def test_it_never_links_back_to_someone_elses_things(bob, things, client):
    # A config naming alice's dataset (no form lets bob write one) still leads bob nowhere.
    job = job_create(owner=bob, kind=Job.Kind.GENERATE, config={"dataset": things["dataset"].pk}, start=False)
    client.force_login(bob)
    page = client.get(f"/jobs/{job.code}/").content.decode()
    assert 'data-role="back"' not in page and "Valley facts" not in page


def test_it_asks_before_cancelling_and_names_what_is_lost(alice, alice_client, things):
    finetune, dataset = things["finetune"], things["dataset"]
    finetune.job = job_create(owner=alice, kind=Job.Kind.TRAIN, config={"finetune": finetune.pk}, start=False)
    finetune.save()
    generate = job_create(owner=alice, kind=Job.Kind.GENERATE, config={"dataset": dataset.pk}, start=False)
    pipeline = job_create(owner=alice, kind=Job.Kind.PIPELINE, title="Document to model: Valley facts",
                          config={"dataset": dataset.pk}, start=False)
    model_page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert ('data-confirm="Cancel the training of “Valley model”? The steps since its last saved checkpoint are lost."'
            in model_page)
    assert ('data-confirm="Cancel the pair generation for “Valley facts”? Its progress so far is lost."'
            in alice_client.get(f"/jobs/{generate.code}/").content.decode())
    assert ('data-confirm="Cancel “Document to model: Valley facts”? Its current step stops and the steps after it do '
            'not run."' in alice_client.get(f"/jobs/{pipeline.code}/").content.decode())


def test_it_cancels_and_retries_back_to_the_page_the_button_was_on(alice, alice_client, things):
    job = job_create(owner=alice, kind=Job.Kind.GENERATE, config={"dataset": things["dataset"].pk}, start=False)
    dataset_page = f"/datasets/{things['dataset'].code}/?q=valley"
    assert alice_client.post(f"/jobs/{job.code}/cancel/", {"next": dataset_page})["Location"] == dataset_page
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    assert alice_client.post(f"/jobs/{job.code}/retry/", {"next": dataset_page})["Location"] == dataset_page
    # Anywhere else, or nowhere named, is the job's own page, which links back.
    for elsewhere in ("https://elsewhere.example/", "//elsewhere.example/", ""):
        assert alice_client.post(f"/jobs/{job.code}/cancel/", {"next": elsewhere})["Location"] == f"/jobs/{job.code}/"


def test_it_shows_no_phase_or_running_message_once_the_job_ended(alice, alice_client):
    job = job_create(owner=alice, kind=Job.Kind.GENERATE, start=False)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())
    job.refresh_from_db()
    job_event_add(job=job, type="progress", data={"phase": "generating"}, phase="generating",
                  message="40 chunks with the extractive generator")
    assert job_snapshot(job=job)["phase"] == "generating"
    job_finish(job=job, status=Job.Status.SUCCEEDED)
    page = alice_client.get(f"/jobs/{job.code}/").content.decode()
    assert '<span class="muted small" data-role="phase"></span>' in page
    assert job_snapshot(job=job)["phase"] == "" and job_snapshot(job=job)["message"] == "40 chunks with the extractive generator"

    stopped = job_create(owner=alice, kind=Job.Kind.TRAIN, start=False)
    Job.objects.filter(pk=stopped.pk).update(status=Job.Status.RUNNING, phase="compiling",
                                             message="The first step compiles the model's kernels")
    stopped = job_cancel(job=Job.objects.get(pk=stopped.pk))
    assert job_snapshot(job=stopped)["status_display"] == "Cancelling"  # asked to stop, not yet stopped
    assert job_snapshot(job=stopped)["message"] == "Stopping at the next step."
    job_finish(job=stopped, status=Job.Status.CANCELLED)
    state = job_snapshot(job=Job.objects.get(pk=stopped.pk))
    assert (state["status_display"], state["phase"], state["message"]) == ("Cancelled", "", "")


def test_it_promises_nothing_on_the_page_of_a_model_whose_training_was_cancelled(alice, alice_client, things):
    finetune = things["finetune"]
    HeldoutEvaluation.objects.all().delete()
    finetune.job = job_create(owner=alice, kind=Job.Kind.TRAIN, config={"finetune": finetune.pk}, start=False)
    finetune.save()
    running = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert "It runs automatically when training has finished." in running
    job_finish(job=finetune.job, status=Job.Status.CANCELLED)
    page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    for promise in ("when training has finished", "runs automatically", "Results appear here"):
        assert promise not in page
    assert "There is nothing to evaluate: the training did not finish." in page
    assert "There is nothing to export: the training did not finish." in page


def test_it_promises_no_results_once_a_benchmark_or_an_evaluation_stopped(alice, alice_client, things):
    run, evaluation = things["benchmark"], things["evaluation"]
    run.job = job_create(owner=alice, kind=Job.Kind.BENCHMARK, config={"benchmark_run": run.pk}, start=False)
    run.save()
    evaluation.job = job_create(owner=alice, kind=Job.Kind.EVALUATE, config={"heldout_evaluation": evaluation.pk},
                                start=False)
    evaluation.save()
    for job, url, stopped in ((run.job, f"/benchmarks/{run.code}/", "There are no results: the run did not finish."),
                              (evaluation.job, f"/benchmarks/heldout/{evaluation.code}/",
                               "There are no results: the evaluation did not finish.")):
        assert "Results appear here" in alice_client.get(url).content.decode()
        job_finish(job=job, status=Job.Status.CANCELLED)
        page = alice_client.get(url).content.decode()
        assert "Results appear here" not in page and stopped in page
