"""The REST API of GRPO runs and reward previews, for the owner and for strangers."""
import json

import pytest

from apps.rl.models import GrpoRun, RewardPreview
from apps.rl.services import recipe_model
from tests.rl.conftest import GOOD, REWARDS, jsonl

pytestmark = pytest.mark.django_db


def test_it_lists_the_reward_library(alice_api):
    functions = alice_api.get("/api/v1/reward-functions/").json()["functions"]
    by_type = {f["type"]: f for f in functions}
    assert set(by_type) == {"format", "answer_match", "exact", "contains", "length", "repetition", "judge"}
    assert {"name": "rubric", "kind": "longtext", "default": "", "help": by_type["judge"]["params"][0]["help"]} \
        in by_type["judge"]["params"]


def test_it_creates_a_run_from_json(alice_api, alice):
    response = alice_api.post("/api/v1/grpo-runs/", {"rewards": REWARDS, "settings": {"max_steps": 7, "prompt_limit": 20},
                                                     "name": "Maths"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    run = GrpoRun.objects.get(code=body["code"])
    assert run.owner == alice and body["name"] == "Maths" and body["prompt_count"] == 20 and body["source"] == "gsm8k"
    assert body["settings"]["max_steps"] == 7 and body["job"]["kind"] == "grpo" and body["job"]["queue"] == "gpu"
    assert [s["name"] for s in body["rewards"]] == ["format", "correct"]


def test_it_creates_a_run_from_an_uploaded_file_and_a_version(alice_api, alice_version):
    response = alice_api.post("/api/v1/grpo-runs/", {
        "source": "upload", "rewards": json.dumps(REWARDS), "settings": json.dumps({"warmup_steps": 0}),
        "prompts_file": jsonl({"prompt": "3 + 4?", "answer": "7"}, {"prompt": "Hi"})}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["prompt_count"] == 2 and response.json()["prompts_filename"] == "prompts.jsonl"
    response = alice_api.post("/api/v1/grpo-runs/", {"source": "version", "version": str(alice_version.code),
                                                     "rewards": [{"type": "contains", "column": "answer"}]}, format="json")
    assert response.status_code == 201 and response.json()["version"] == str(alice_version.code)


@pytest.mark.parametrize("body, message", [
    ({"rewards": [{"type": "nonsense"}]}, "unknown type"),
    ({"rewards": REWARDS, "settings": {"beta": -1}}, "Beta must be between"),
    ({"rewards": REWARDS, "settings": [1]}, "must be a json object"),
    ({"rewards": REWARDS, "settings": {"stepz": 3}}, "Unknown setting 'stepz'. Allowed:"),
    ({"rewards": REWARDS, "source": "version"}, "Name one of your dataset versions"),
    ({"rewards": REWARDS, "source": "upload"}, "Upload a JSONL file"),
    ({"rewards": REWARDS, "base_model": "../../etc"}, "catalogue"),
])
def test_it_answers_400_with_a_readable_message(alice_api, body, message):
    response = alice_api.post("/api/v1/grpo-runs/", body, format="json")
    assert response.status_code == 400 and message.lower() in response.content.decode().lower()
    assert not GrpoRun.objects.exists()


def test_it_shows_runs_and_their_history_to_the_owner_only(alice_api, bob_api, alice_run, bob):
    listing = alice_api.get("/api/v1/grpo-runs/").json()
    assert [r["code"] for r in listing["results"]] == [str(alice_run.code)]
    assert bob_api.get("/api/v1/grpo-runs/").json()["results"] == []
    detail = alice_api.get(f"/api/v1/grpo-runs/{alice_run.code}/").json()
    assert detail["metrics"]["reward_last"] == 1.5 and detail["job"]["status"] == "succeeded"
    steps = alice_api.get(f"/api/v1/grpo-runs/{alice_run.code}/history/").json()["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3] and steps[-1]["samples"][0]["scores"]["correct"] == 1.0
    for path in ("", "history/", "download/"):
        assert bob_api.get(f"/api/v1/grpo-runs/{alice_run.code}/{path}").status_code == 404
    assert alice_api.get(f"/api/v1/grpo-runs/{alice_run.code}/download/").status_code == 404  # no files yet


def test_it_downloads_the_adapter_zip(alice_api, bob_api, alice_run, settings):
    path = settings.GARAGE_ARTIFACTS_DIR / "grpo" / str(alice_run.code) / "adapter.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    alice_run.artifact = f"grpo/{alice_run.code}/adapter.zip"
    alice_run.save()
    response = alice_api.get(f"/api/v1/grpo-runs/{alice_run.code}/download/")
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"PK")
    assert bob_api.get(f"/api/v1/grpo-runs/{alice_run.code}/download/").status_code == 404


def test_it_starts_the_reference_recipe(alice_api, bob_api, alice_provider):
    response = alice_api.post("/api/v1/grpo-runs/recipe/", {"judge": True, "provider": str(alice_provider.code)},
                              format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["recipe"] == "gsm8k-reference" and body["base_model"] == recipe_model()
    assert [s["name"] for s in body["rewards"]] == ["format", "correctness", "judge"]
    # A stranger cannot use Alice's provider: 404, as for anything else of hers.
    assert bob_api.post("/api/v1/grpo-runs/recipe/", {"judge": True, "provider": str(alice_provider.code)},
                        format="json").status_code == 404
    response = alice_api.post("/api/v1/grpo-runs/recipe/", {"settings": {"max_steps": 0}}, format="json")
    assert response.status_code == 400 and "Max steps must be between 1" in response.json()["message"]


def test_it_previews_pasted_completions(alice_api, bob_api):
    response = alice_api.post("/api/v1/reward-previews/", {"rewards": REWARDS, "samples": [
        {"prompt": "3 + 4?", "completion": GOOD, "answer": "7"}, {"completion": "nothing"}]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert [r["total"] for r in body["results"]] == [2.5, 0.0] and body["job"] is None
    assert alice_api.get(f"/api/v1/reward-previews/{body['code']}/").json()["results"] == body["results"]
    assert bob_api.get(f"/api/v1/reward-previews/{body['code']}/").status_code == 404
    assert bob_api.get("/api/v1/reward-previews/").json()["results"] == []
    response = alice_api.post("/api/v1/reward-previews/", {"rewards": REWARDS, "samples": []}, format="json")
    assert response.status_code == 400 and "at least one sample" in response.json()["message"]


def test_it_previews_completions_the_base_model_writes_in_a_job(alice_api, bob_api, alice_version):
    response = alice_api.post("/api/v1/reward-previews/", {"rewards": REWARDS, "base_model": "tiny-gemma3", "count": 2},
                              format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["job"]["kind"] == "grpo" and len(body["samples"]) == 2 and body["samples"][0]["answer"] == "72"
    response = alice_api.post("/api/v1/reward-previews/", {"rewards": REWARDS, "base_model": "tiny-gemma3",
                                                           "source": "version", "version": str(alice_version.code)},
                              format="json")
    assert response.status_code == 201 and response.json()["samples"][0]["answer"] == "City 0"
    assert bob_api.post("/api/v1/reward-previews/", {"rewards": REWARDS, "base_model": "tiny-gemma3", "source": "version",
                                                     "version": str(alice_version.code)}, format="json").status_code == 404
    assert RewardPreview.objects.count() == 2
