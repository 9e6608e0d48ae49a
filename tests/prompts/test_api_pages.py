"""The REST API and the pages of prompt optimization, for the owner (alice) and a stranger (bob → 404)."""
import pytest

from apps.core.models import Job
from apps.core.services import job_finish
from apps.prompts.models import SavedPrompt
from apps.prompts.jobs import optimized_prompt_execute
from apps.prompts.services import saved_prompt_create
from apps.training.model_choices import default_model_choice
from tests.fixtures.models import STANDIN_ID, STANDIN_LABEL, make_tuned_model, picker, standin_model  # noqa: F401
from tests.prompts.conftest import make_run
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(alice, alice_version, alice_provider):
    run = make_run(alice, alice_version, alice_provider, name="Alice's prompt")
    result = optimized_prompt_execute(run=run, reporter=RecordingReporter())
    job_finish(job=run.job, status=Job.Status.SUCCEEDED, result=result)
    run.refresh_from_db()
    return run


def test_it_creates_a_run_through_the_api(alice_api, alice_version, alice_provider):
    response = alice_api.post("/api/v1/prompt-optimizations/", {
        "version": str(alice_version.code), "task_model": str(alice_provider.code),
        "reflection_model": str(alice_provider.code), "metric": "exact_match", "budget": 25,
        "seed_prompt": "Be helpful.", "settings": {"minibatch_size": 2}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["job"]["kind"] == "optimize_prompt" and body["budget"] == 25 and body["val_count"] == 2
    bad = alice_api.post("/api/v1/prompt-optimizations/", {
        "version": str(alice_version.code), "task_model": str(alice_provider.code),
        "reflection_model": str(alice_provider.code), "budget": 3}, format="json")
    assert bad.status_code == 400 and "too small" in bad.json()["message"]
    unknown = alice_api.post("/api/v1/prompt-optimizations/", {
        "version": str(alice_version.code), "task_model": str(alice_provider.code),
        "reflection_model": str(alice_provider.code), "budget": 25, "settings": {"batch": 2}}, format="json")
    assert unknown.status_code == 400 and "Unknown setting 'batch'" in unknown.json()["message"]


def test_it_answers_strangers_404_in_the_api(finished, alice_api, bob_api, alice_version, alice_provider):
    url = f"/api/v1/prompt-optimizations/{finished.code}/"
    assert alice_api.get(url).json()["candidates"][0]["status"] == "seed"
    assert bob_api.get(url).status_code == 404
    assert bob_api.post(url + "save/", {}, format="json").status_code == 404
    assert bob_api.get("/api/v1/prompt-optimizations/").json()["count"] == 0
    # Bob cannot use Alice's version or provider either.
    response = bob_api.post("/api/v1/prompt-optimizations/", {"version": str(alice_version.code), "task_model": "local",
                                                              "reflection_model": "local", "budget": 30}, format="json")
    assert response.status_code == 404
    response = bob_api.post("/api/v1/prompt-optimizations/", {"source": "gsm8k", "task_model": str(alice_provider.code),
                                                              "reflection_model": "local", "budget": 30}, format="json")
    assert response.status_code == 404


def test_it_saves_the_best_prompt_and_manages_saved_prompts_in_the_api(finished, alice_api, bob_api):
    response = alice_api.post(f"/api/v1/prompt-optimizations/{finished.code}/save/", {"name": "One word"}, format="json")
    assert response.status_code == 201 and response.json()["text"] == finished.best_prompt
    code = response.json()["code"]
    assert bob_api.get(f"/api/v1/saved-prompts/{code}/").status_code == 404
    assert bob_api.patch(f"/api/v1/saved-prompts/{code}/", {"name": "x"}, format="json").status_code == 404
    assert bob_api.delete(f"/api/v1/saved-prompts/{code}/").status_code == 404
    assert alice_api.patch(f"/api/v1/saved-prompts/{code}/", {"name": "Renamed"}, format="json").json()["name"] == "Renamed"
    created = alice_api.post("/api/v1/saved-prompts/", {"name": "Mine", "text": "Be brief."}, format="json")
    assert created.status_code == 201
    assert alice_api.post("/api/v1/saved-prompts/", {"name": "Empty", "text": " "}, format="json").status_code == 400
    assert alice_api.delete(f"/api/v1/saved-prompts/{code}/").status_code == 204
    assert list(SavedPrompt.objects.values_list("name", flat=True)) == ["Mine"]


def test_it_shows_the_pages_to_the_owner_only(finished, alice_client, bob_client, alice):
    page = alice_client.get("/prompts/").content.decode()
    assert "Alice&#x27;s prompt" in page and "Prompt optimization" in page
    detail = alice_client.get(f"/prompts/{finished.code}/").content.decode()
    assert 'data-role="best-prompt"' in detail and "Answer in one word." in detail and detail.count('data-role="candidate"') >= 2
    assert "front" in detail
    assert bob_client.get(f"/prompts/{finished.code}/").status_code == 404
    assert bob_client.post(f"/prompts/{finished.code}/save/").status_code == 404
    assert "Alice" not in bob_client.get("/prompts/").content.decode()
    response = alice_client.post(f"/prompts/{finished.code}/save/", {"name": "Best one"})
    saved = SavedPrompt.objects.get(owner=alice)
    assert response.status_code == 302 and response["Location"] == f"/prompts/saved/{saved.code}/"
    assert "Best one" in alice_client.get("/prompts/saved/").content.decode()
    assert bob_client.get(f"/prompts/saved/{saved.code}/").status_code == 404
    assert bob_client.post(f"/prompts/saved/{saved.code}/delete/").status_code == 404
    assert alice_client.post(f"/prompts/saved/{saved.code}/delete/").status_code == 302
    assert not SavedPrompt.objects.exists()


def test_it_starts_a_run_from_the_form_and_explains_errors(alice_client, alice_version, alice_provider):
    form = alice_client.get("/prompts/new/").content.decode()
    assert "Reflection model" in form and "Lab box" in form and "A local model" in form
    data = {"source": "version", "version": str(alice_version.code), "task_model": str(alice_provider.code),
            "reflection_model": str(alice_provider.code), "metric": "exact_match", "budget": 4,
            "task_local_model": "", "reflection_local_model": ""}
    response = alice_client.post("/prompts/new/", data)
    assert response.status_code == 400 and "too small" in response.content.decode()
    response = alice_client.post("/prompts/new/", {**data, "budget": 30})
    assert response.status_code == 302 and response["Location"].startswith("/prompts/")


def test_it_offers_an_empty_state(alice_client):
    assert "No prompt optimizations yet" in alice_client.get("/prompts/").content.decode()
    saved = alice_client.get("/prompts/saved/").content.decode()
    assert "No saved prompts yet" in saved
    assert alice_client.post("/prompts/saved/", {"name": "Mine", "text": "Be brief."}).status_code == 302


def test_it_lists_saved_prompts_of_the_owner_only(alice, bob, alice_client):
    saved_prompt_create(owner=bob, name="Bob's secret", text="Whisper.")
    assert "Bob" not in alice_client.get("/prompts/saved/").content.decode()


def test_it_offers_every_installed_model_and_the_owners_tuned_models_as_local_models(alice, alice_client, alice_api,
                                                                                    alice_version, alice_provider,
                                                                                    standin_model):
    tuned = make_tuned_model(alice, name="Capitals model")
    page = alice_client.get("/prompts/new/").content.decode()
    for field in ("task_local_model", "reflection_local_model"):
        groups, selected = picker(page, field)
        assert (STANDIN_ID, f"{STANDIN_LABEL} · 1 M parameters") in groups["Installed on this server"]
        assert f"finetune:{tuned.code}" in dict(groups["Your models"])
        assert dict(groups["Test model"])["tiny-gemma3"].startswith("Tiny test model")
        assert selected == default_model_choice()
    response = alice_api.post("/api/v1/prompt-optimizations/", {
        "version": str(alice_version.code), "task_model": "local", "task_local_model": STANDIN_ID,
        "reflection_model": str(alice_provider.code), "budget": 30}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["task_local_model"] == STANDIN_ID and STANDIN_LABEL in response.json()["task_label"]


def shown_status_texts(page: str) -> list[str]:
    """The status-dependent texts a page shows (the others carry `hidden`)."""
    import re

    return [text.strip() for hidden, text in re.findall(r'data-show-when="[^"]+"( hidden)?>([^<]*)<', page) if not hidden]


def test_it_derives_the_runs_progress_texts_from_its_job(alice, alice_client, alice_version, alice_provider):
    from apps.core.models import JobEvent
    from apps.core.services import job_claim, job_event_add

    run = make_run(alice, alice_version, alice_provider)
    page = alice_client.get(f"/prompts/{run.code}/").content.decode()
    assert shown_status_texts(page) == ["The chart starts once the seed prompt has been scored.",
                                        "No candidates yet: the run starts when a worker is free."]
    job = job_claim(job_id=run.job.pk, task_id=run.job.celery_task_id, worker="test")
    page = alice_client.get(f"/prompts/{run.code}/").content.decode()
    assert "No candidates yet: the seed prompt is being scored first." in shown_status_texts(page)
    # While it runs, the front is the one the latest candidate's event reported.
    job_event_add(job=job, type=JobEvent.Type.METRIC, data={"candidate": 0, "front": [0]})
    run.candidates.create(index=0, prompt="You are helpful.", status="seed", val_score=0.5, calls_used=2)
    page = alice_client.get(f"/prompts/{run.code}/").content.decode()
    assert 'data-field="front" >front' in page and '<tr data-role="no-candidates" hidden>' in page
    run.candidates.all().delete()
    job_finish(job=job, status=Job.Status.FAILED, error_message="The key was refused.")
    page = alice_client.get(f"/prompts/{run.code}/").content.decode()
    assert shown_status_texts(page) == ["No prompt was scored.",
                                        "No candidates: the run ended before its seed prompt was scored."]
    assert "being scored" not in " ".join(shown_status_texts(page))
