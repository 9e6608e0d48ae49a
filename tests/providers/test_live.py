"""Generation jobs run by a real Celery worker process against the fake chat endpoint and the tiny model."""
import pytest

from apps.core.models import Job
from apps.datasets.models import QAPair
from apps.providers.models import ExternalCallAudit
from tests.live import wait_for
from tests.providers.conftest import ALICE_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def finished(code) -> Job:
    return wait_for(lambda: (job := Job.objects.get(code=code)).is_final and job, 120, interval=0.1, what="the job")


def test_it_runs_an_endpoint_generation_job_on_the_worker(alice, alice_api, worker, extracted_dataset, alice_provider, chat_server):
    response = alice_api.post(f"/api/v1/datasets/{extracted_dataset.code}/generate/",
                              {"backend": "endpoint", "provider": str(alice_provider.code), "num_pairs": 2}, format="json")
    assert response.status_code == 202, response.content
    job = finished(response.json()["code"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.result["pairs"] == 2 and job.result["backend"] == "endpoint" and job.result["external_calls"] == 1
    assert extracted_dataset.pairs.filter(source=QAPair.Source.ENDPOINT).count() == 2
    [request] = chat_server.chat_requests
    assert request.headers["authorization"] == f"Bearer {ALICE_KEY}"
    assert "mayor@eldhavn.example" not in request.text and "[EMAIL]" in request.text
    audit = ExternalCallAudit.objects.get(job=job)
    assert audit.owner == alice and audit.ok and audit.characters_sent == job.result["characters_sent"] > 0
    assert any("Chunk 1" in (data.get("message") or "") for data in job.events.filter(type="progress").values_list("data", flat=True))
    assert ALICE_KEY not in str(list(job.events.values_list("data", flat=True))) and ALICE_KEY not in str(job.config)


def test_it_runs_a_local_model_generation_on_the_gpu_queue_and_counts_its_junk(alice_api, worker, extracted_dataset):
    response = alice_api.post(f"/api/v1/datasets/{extracted_dataset.code}/generate/",
                              {"backend": "local_model", "model_path": "tiny-gemma3", "num_pairs": 1}, format="json")
    assert response.status_code == 202 and response.json()["queue"] == "gpu"
    job = finished(response.json()["code"])
    # The tiny model writes noise: the job ends with a readable explanation, not a crash, and the worker lives on.
    assert job.status == Job.Status.FAILED
    assert "none of the model's answers could be read as question-answer pairs (1 unusable)" in job.error_message
    assert worker.poll() is None
