"""A benchmark job run end to end by a real Celery worker process with the tiny model."""
import pytest

from apps.core.models import Job
from apps.evaluation.models import BenchmarkRun
from tests.live import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.mark.timeout(240)
def test_it_runs_a_tiny_model_gsm8k_benchmark_on_the_worker(alice, alice_api, alice_client, worker):
    response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": "tiny-gemma3", "limit": 3,
                                                      "max_new_tokens": 16, "batch_size": 2}, format="json")
    assert response.status_code == 201, response.content
    code = response.json()["job"]["code"]
    job = wait_for(lambda: (job := Job.objects.get(code=code)).is_final and job, 180, interval=0.2, what="the benchmark")
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    run = BenchmarkRun.objects.get(job=job)
    assert job.result["benchmark_run"] == str(run.code) and job.result["n"] == 3
    # The untrained tiny model knows no arithmetic: it scores 0, but every problem has its row.
    assert run.results["n"] == 3 and run.results["accuracy"] == 0.0
    assert list(run.items.values_list("index", "reference")) == [(0, "18"), (1, "3"), (2, "70000")]
    assert all(not item.correct for item in run.items.all())
    assert job.events.filter(type="metric").exists() and job.events.filter(data__phase="generating").exists()
    page = alice_client.get(f"/benchmarks/{run.code}/").content.decode()
    assert "0% (0 of 3)" in page and page.count('data-role="item"') == 3
    assert worker.poll() is None
