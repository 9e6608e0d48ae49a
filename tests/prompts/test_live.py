"""Prompt optimization end to end on a real Celery worker against the fake endpoint, and its cancel."""
import pytest

from apps.core.models import Job
from apps.core.services import job_cancel
from apps.prompts.models import OptimizedPrompt
from tests.fakes.chat_server import Reply
from tests.live import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def finished(code, timeout=60):
    return wait_for(lambda: (job := Job.objects.get(code=code)).is_final and job, timeout, interval=0.1, what=f"job {code}")


@pytest.mark.timeout(120)
def test_it_optimizes_a_prompt_on_the_worker(alice_api, alice_version, alice_provider, chat_server, worker):
    response = alice_api.post("/api/v1/prompt-optimizations/", {
        "version": str(alice_version.code), "task_model": str(alice_provider.code),
        "reflection_model": str(alice_provider.code), "metric": "exact_match", "budget": 20,
        "seed_prompt": "You are helpful.", "settings": {"minibatch_size": 2}}, format="json")
    assert response.status_code == 201, response.content
    job = finished(response.json()["job"]["code"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message or job.error
    run = OptimizedPrompt.objects.get(job=job)
    assert job.result["best_val_score"] == 1.0 and "Answer in one word." in run.best_prompt
    assert len(chat_server.chat_requests) == job.result["calls_used"] <= 20
    metrics = [e.data for e in job.events.filter(type="metric")]
    assert metrics[0]["candidate"] == 0 and any(m.get("parent") == 0 for m in metrics[1:])
    assert worker.poll() is None


@pytest.mark.timeout(120)
def test_it_cancels_a_running_optimization(alice, alice_api, alice_version, alice_provider, chat_server, worker):
    slow = [Reply.text("Slow answer.", delay=0.3) for _ in range(400)]
    chat_server.script(*slow)
    response = alice_api.post("/api/v1/prompt-optimizations/", {
        "version": str(alice_version.code), "task_model": str(alice_provider.code),
        "reflection_model": str(alice_provider.code), "budget": 400}, format="json")
    code = response.json()["job"]["code"]
    wait_for(lambda: len(chat_server.chat_requests) >= 3, 30, interval=0.1, what="the first requests")
    job_cancel(job=Job.objects.get(code=code))
    job = finished(code)
    assert job.status == Job.Status.CANCELLED
    assert len(chat_server.chat_requests) < 40
