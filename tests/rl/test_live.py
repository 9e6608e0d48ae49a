"""The reference recipe end to end on a real Celery worker with the tiny model: warm-up, GRPO, live metrics,
the adapter, then GSM8K benchmarks of the base and the tuned model, run by the same worker."""
import pytest

from apps.core.models import Job
from apps.rl.models import GrpoRun, RewardPreview
from tests.live import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

TINY_RECIPE = {"max_steps": 4, "num_generations": 4, "prompts_per_step": 2, "max_completion_length": 24,
               "warmup_steps": 5, "warmup_examples": 16, "warmup_learning_rate": 1e-2, "learning_rate": 1e-3,
               "prompt_limit": 32, "sample_every": 2, "benchmark_limit": 2, "benchmark_max_new_tokens": 16}


def finished(code, timeout=240):
    return wait_for(lambda: (job := Job.objects.get(code=code)).is_final and job, timeout, interval=0.2, what=f"job {code}")


@pytest.mark.timeout(420)
def test_it_runs_the_reference_recipe_with_the_tiny_model_on_the_worker(alice, alice_api, alice_client, worker):
    response = alice_api.post("/api/v1/grpo-runs/recipe/", {"base_model": "tiny-gemma3", "settings": TINY_RECIPE},
                              format="json")
    assert response.status_code == 201, response.content
    job = finished(response.json()["job"]["code"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message or job.error
    run = GrpoRun.objects.get(job=job)
    assert run.metrics["train_steps"] == 4 and run.metrics["warmup"]["steps"] == 5 and run.artifact.endswith("adapter.zip")
    assert set(run.metrics["rewards"]) == {"format", "correctness"} and job.result["grpo_run"] == str(run.code)
    metrics = [e.data for e in job.events.filter(type="metric") if "reward" in e.data]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4] and "reward/format" in metrics[0] and "kl" in metrics[0]
    assert metrics[1]["samples"] and job.events.filter(data__phase="warm-up: training").exists()

    # The benchmarks of base and tuned were queued by the run (what follows its job, just after it ended) and answered
    # by the same worker.
    run = wait_for(lambda: GrpoRun.objects.filter(pk=run.pk, base_benchmark__isnull=False,
                                                  tuned_benchmark__isnull=False).first(), 30, what="the benchmarks")
    for benchmark in (run.base_benchmark, run.tuned_benchmark):
        bench_job = finished(benchmark.job.code)
        assert bench_job.status == Job.Status.SUCCEEDED, bench_job.error_message
    run.base_benchmark.refresh_from_db()
    assert run.base_benchmark.results["n"] == 2
    page = alice_client.get(f"/rl/{run.code}/").content.decode()
    assert "GSM8K before and after" in page and page.count("badge succeeded") >= 3 and 'data-role="download"' in page
    download = alice_client.get(f"/rl/{run.code}/download/")
    assert download.status_code == 200 and b"".join(download.streaming_content)[:2] == b"PK"
    assert worker.poll() is None


@pytest.mark.timeout(240)
def test_it_generates_and_scores_a_preview_on_the_worker(alice, alice_api, worker):
    response = alice_api.post("/api/v1/reward-previews/", {
        "rewards": [{"type": "format"}, {"type": "answer_match"}, {"type": "length", "min": 1, "max": 50}],
        "base_model": "tiny-gemma3", "count": 2, "max_new_tokens": 8}, format="json")
    assert response.status_code == 201, response.content
    job = finished(response.json()["job"]["code"], timeout=180)
    assert job.status == Job.Status.SUCCEEDED, job.error_message or job.error
    preview = RewardPreview.objects.get(job=job)
    assert len(preview.results) == 2 and all(s["completion"] for s in preview.samples)
    assert set(preview.results[0]["scores"]) == {"format", "answer_match", "length"}
