"""Job panels in headless Chromium: Cancel asks first and comes back to the page it was on, an ended job leaves no
stale status behind, and what a running job hides comes back live when it ends. The test plays the worker's part
through the same services, so each job ends exactly when the test says."""
import shutil

import pytest

from apps.core.models import Job
from apps.core.services import job_claim, job_create, job_event_add, job_finish
from apps.datasets.models import Dataset, DatasetVersion
from apps.training.exports import finetune_export_start
from apps.training.models import FineTune
from tests.browser import BROWSER_TEST

pytestmark = BROWSER_TEST


@pytest.fixture
def finetune(alice):
    dataset = Dataset.objects.create(owner=alice, name="Valley facts")
    version = DatasetVersion.objects.create(owner=alice, dataset=dataset, number=1, example_count=20, heldout_count=5)
    return FineTune.objects.create(owner=alice, dataset=dataset, version=version, name="Valley model",
                                   base_model="tiny-gemma3")


@pytest.fixture
def signed_in(browser_context, server, session_cookie, alice):
    browser_context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": server}])
    return browser_context.new_page()


@pytest.fixture
def trained(finetune, settings):
    """The fine-tune with its model file (an empty zip: the page only needs it to exist), as after training."""
    folder = settings.GARAGE_ARTIFACTS_DIR / str(finetune.code)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    finetune.artifact = f"{finetune.code}/adapter.zip"
    finetune.save()
    yield finetune
    shutil.rmtree(folder)


def run_as_worker(job: Job) -> Job:
    """Claim the job as a worker would."""
    Job.objects.filter(pk=job.pk).update(celery_task_id=f"task-{job.pk}")
    return job_claim(job_id=job.pk, task_id=f"task-{job.pk}", worker="test")


def test_it_asks_before_cancelling_a_training_comes_back_and_shows_no_stale_status(alice, server, signed_in, finetune):
    finetune.job = job_create(owner=alice, kind=Job.Kind.TRAIN, queue="gpu", title="Fine-tune Valley model",
                              config={"finetune": finetune.pk}, start=False)
    finetune.save()
    job = run_as_worker(finetune.job)
    job_event_add(job=job, type="progress", data={"phase": "training", "message": "120 steps"}, phase="training",
                  message="120 steps")
    job_event_add(job=job, type="metric", data={"step": 3, "loss": 2.5, "eta_s": 330})

    page = signed_in
    model_page = f"{server}/training/{finetune.code}/"
    page.goto(model_page)
    panel = page.locator(f"section.job[data-job='{job.code}']")
    assert panel.locator("[data-metric=eta_s]").inner_text() == "ETA 5m 30s"
    assert panel.locator("[data-role=phase]").inner_text() == "training"
    assert "It runs automatically when training has finished." in page.locator("[data-role=heldout]").inner_text()

    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    with page.expect_navigation():
        panel.locator("[data-role=cancel]").click()
    assert questions == ["Cancel the training of “Valley model”? The steps since its last saved checkpoint are lost."]
    assert page.url == model_page  # back where the button was, not on a bare job page
    assert panel.locator("[data-role=status]").inner_text() == "Cancelling"
    assert panel.locator("[data-role=cancel]").count() == 0

    job_finish(job=job, status=Job.Status.CANCELLED)  # the trainer stops at its next step
    # The panel reloads the page when the job ends; the reloaded page promises nothing the job will no longer do.
    page.wait_for_function(
        "() => document.querySelector('[data-role=heldout]').innerText.includes('nothing to evaluate')")
    assert panel.get_attribute("data-status") == "cancelled"
    assert panel.locator("[data-role=status]").inner_text() == "Cancelled"
    assert panel.locator("[data-role=phase]").inner_text() == ""
    assert panel.locator("[data-metric=eta_s]").count() == 0 and panel.locator("[data-metric=step]").count() == 1
    text = page.locator("main, body").first.inner_text()
    assert "ETA" not in text and "when training has finished" not in text and "runs automatically" not in text


def test_it_gives_the_export_buttons_back_live_when_the_export_ends(server, signed_in, trained, settings):
    settings.GARAGE_GPU_SLOTS = 0  # the export waits for a GPU until the test runs it
    job = finetune_export_start(finetune=trained, kinds=["gguf_f16", "gguf_q8_0"])

    page = signed_in
    page.goto(f"{server}/training/{trained.code}/")
    panel = page.locator(f"section.job[data-job='{job.code}']")
    running_note, gguf = page.locator("[data-role=export-running]"), page.locator("[data-role=export-gguf]")
    assert running_note.is_visible() and not gguf.is_visible()
    assert panel.locator("[data-role=waiting]").inner_text() == "Next in line; waiting for a free GPU."
    page.evaluate("() => { window.stayedOnThePage = true; }")

    job = run_as_worker(job)
    page.wait_for_function("() => document.querySelector('[data-role=waiting]').hidden")  # running: no longer in line
    job_event_add(job=job, type="progress", data={"phase": "converting to GGUF"}, phase="converting to GGUF")
    job_finish(job=job, status=Job.Status.FAILED, error_message="The GGUF converter is not installed.")

    gguf.wait_for(state="visible")
    assert not running_note.is_visible()
    assert panel.get_attribute("data-status") == "failed" and panel.locator("[data-role=phase]").inner_text() == ""
    assert page.evaluate("() => window.stayedOnThePage") is True  # given back live, without a reload
