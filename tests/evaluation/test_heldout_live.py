"""Training, then the automatic held-out evaluation, run end to end by a real Celery worker process."""
import pytest

from apps.core.models import Job
from apps.evaluation.models import HeldoutEvaluation
from apps.training.models import FineTune
from apps.training.services import finetune_create_from_dataset
from tests.evaluation.test_heldout import facts_dataset
from tests.live import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.mark.timeout(300)
def test_it_trains_then_evaluates_on_the_worker(alice, alice_client, alice_api, worker):
    finetune = finetune_create_from_dataset(owner=alice, base_model="tiny-gemma3",
                                            dataset=facts_dataset(alice, 30, phrasings=2), options={"max_steps": 60})
    version = finetune.version
    assert version.recall_count >= 5 and version.heldout_count == version.recall_count + 6  # 3 unseen facts, 2 ways
    train_job = wait_for(lambda: (job := Job.objects.get(pk=finetune.job_id)).is_final and job, 180, interval=0.2,
                         what="the training")
    assert train_job.status == Job.Status.SUCCEEDED, train_job.error_message
    evaluation = wait_for(lambda: HeldoutEvaluation.objects.filter(finetune=finetune).first(), 10, what="the evaluation row")
    job = wait_for(lambda: (job := Job.objects.get(pk=evaluation.job_id)).is_final and job, 120, interval=0.2,
                   what="the evaluation")
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.kind == Job.Kind.EVALUATE and job.result["heldout_evaluation"] == str(evaluation.code)
    assert job.events.filter(data__phase="answering with the tuned model").exists()
    metrics = FineTune.objects.get(pk=finetune.pk).metrics
    control = metrics["evaluation"]["control"]["n"]  # the shipped general questions, asked after every training
    assert metrics["train_steps"] == 60 and metrics["evaluation"]["examples"] == version.heldout_count + control
    recall = metrics["evaluation"]["recall"]["token_f1"]
    assert recall["tuned"] > recall["base"] and metrics["evaluation"]["tuned"] > metrics["evaluation"]["base"]
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert page.count('data-role="heldout-item"') >= 3 and 'data-direction="up"' in page
    assert 'data-group="recall" data-verdict="learned"' in page
    report = alice_api.get(f"/api/v1/heldout-evaluations/{evaluation.code}/").json()
    assert report["results"]["examples"] == version.heldout_count + control and report["job"]["status"] == "succeeded"
    assert worker.poll() is None
