"""A saved prompt as a benchmark run's system prompt: in the form and the API, only the owner's, 404 for others'."""
import pytest

from apps.evaluation.models import BenchmarkRun
from apps.prompts.services import saved_prompt_create

pytestmark = pytest.mark.django_db

ALICE_TEXT = "Solve step by step and end with #### and the number."
BOB_TEXT = "Bob's secret: answer 42 to everything."


@pytest.fixture
def prompts(alice, bob):
    return (saved_prompt_create(owner=alice, name="Hash answers", text=ALICE_TEXT),
            saved_prompt_create(owner=bob, name="Bob forty-two", text=BOB_TEXT))


def form_data(**extra):
    return {"benchmark": "gsm8k", "model": "tiny-gemma3", "limit": 3, "subset": "first", "few_shot": 0,
            "temperature": 0, "top_p": 1, "seed": 0, "max_new_tokens": 32, "batch_size": 2, **extra}


def test_it_offers_only_the_owners_saved_prompts_and_preselects_one(alice_client, prompts):
    alice_prompt, bob_prompt = prompts
    page = alice_client.get("/benchmarks/new/").content.decode()
    assert f'value="{alice_prompt.code}"' in page and "Hash answers" in page
    assert str(bob_prompt.code) not in page and "Bob forty-two" not in page
    page = alice_client.get(f"/benchmarks/new/?prompt={alice_prompt.code}").content.decode()
    assert f'<option value="{alice_prompt.code}" selected>' in page
    response = alice_client.get(f"/benchmarks/new/?prompt={bob_prompt.code}")
    assert response.status_code == 404 and BOB_TEXT not in response.content.decode()


def test_it_makes_the_saved_prompt_the_runs_system_prompt(alice_client, prompts):
    alice_prompt, _ = prompts
    response = alice_client.post("/benchmarks/new/", form_data(saved_prompt=str(alice_prompt.code)))
    assert response.status_code == 302, response.content.decode()[:2000]
    run = BenchmarkRun.objects.get()
    assert run.settings["system_prompt"] == ALICE_TEXT and response["Location"].endswith(f"/{run.code}/")


def test_it_refuses_someone_elses_saved_prompt_in_the_form(alice_client, prompts):
    _, bob_prompt = prompts
    response = alice_client.post("/benchmarks/new/", form_data(saved_prompt=str(bob_prompt.code)))
    assert response.status_code == 404 and BOB_TEXT not in response.content.decode()
    assert alice_client.post("/benchmarks/new/", form_data(saved_prompt="nonsense")).status_code == 404
    assert not BenchmarkRun.objects.exists()


def test_it_asks_for_a_saved_prompt_or_a_typed_one_not_both(alice_client, prompts):
    alice_prompt, _ = prompts
    response = alice_client.post("/benchmarks/new/", form_data(saved_prompt=str(alice_prompt.code),
                                                               system_prompt="Something else."))
    assert response.status_code == 400 and "not both" in response.content.decode()
    assert not BenchmarkRun.objects.exists()


def test_it_takes_a_saved_prompt_in_the_api(alice_api, prompts):
    alice_prompt, _ = prompts
    response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": "tiny-gemma3", "limit": 2,
                                                      "saved_prompt": str(alice_prompt.code)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["settings"]["system_prompt"] == ALICE_TEXT


def test_it_answers_404_to_someone_elses_saved_prompt_in_the_api(alice_api, bob_api, prompts):
    alice_prompt, bob_prompt = prompts
    body = {"benchmark": "gsm8k", "base_model": "tiny-gemma3", "limit": 2}
    response = alice_api.post("/api/v1/benchmarks/", {**body, "saved_prompt": str(bob_prompt.code)}, format="json")
    assert response.status_code == 404 and BOB_TEXT not in response.content.decode()
    response = bob_api.post("/api/v1/benchmarks/", {**body, "saved_prompt": str(alice_prompt.code)}, format="json")
    assert response.status_code == 404 and ALICE_TEXT not in response.content.decode()
    assert alice_api.post("/api/v1/benchmarks/", {**body, "saved_prompt": "nonsense"}, format="json").status_code == 400
    assert not BenchmarkRun.objects.exists()
