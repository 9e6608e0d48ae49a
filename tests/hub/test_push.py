"""Pushing a trained fine-tune to the local Hub with the real huggingface_hub client: files, card, visibility,
readable failures, the evaluation gate, the automatic push, and who may do what."""
import json
import logging

import pytest

from apps.core.models import Job, JobEvent
from apps.core.services import job_create, job_finish
from apps.hub.pushes import ConfirmationRequired, PublishBlocked, hub_preferences_update, hub_push_start
from apps.training.services import finetune_rename
from tests.hub.conftest import ALICE_HF, BOB_HF, make_finetune
from tests.fixtures.jobs import run_job

pytestmark = pytest.mark.django_db

WORSE = {"metric": "token_f1", "base": 0.41, "tuned": 0.38, "n": 20}
BETTER = {"metric": "token_f1", "base": 0.41, "tuned": 0.62, "n": 20}


def test_it_pushes_the_adapter_with_its_model_card(finetune, alice_connected, hub, artifacts):
    job = hub_push_start(finetune=finetune, repo="valley-model", private=True)
    assert job.kind == Job.Kind.PUSH and job.queue == "default" and job.owner == finetune.owner
    assert job.config == {"finetune": finetune.pk, "connection": alice_connected.pk, "repo_id": f"{ALICE_HF}/valley-model",
                          "what": "adapter", "private": True, "mode": "new", "automatic": False,
                          "gate": {"evaluated": False, "worse": False, "confirmed": False}}
    job = run_job(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    repo = hub.repos[f"{ALICE_HF}/valley-model"]
    assert repo["private"] is True and repo["owner"] == ALICE_HF
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= set(repo["files"])
    card = repo["files"]["README.md"].decode()
    assert card.startswith("---\n") and "library_name: peft" in card and "- gemma-garage" in card
    assert "# Valley model" in card and "| Valley notes | 1 | 8 |" in card and "**tiny-gemma3**" in card
    adapter_config = json.loads(repo["files"]["adapter_config.json"])
    assert adapter_config["peft_type"] == "LORA" and adapter_config["base_model_name_or_path"] == "tiny-gemma3"
    weights = artifacts / str(finetune.code) / "model" / "adapter_model.safetensors"
    assert repo["files"]["adapter_model.safetensors"] == weights.read_bytes()
    assert hub.yaml_validated and "library_name: peft" in hub.yaml_validated[-1]
    assert job.result["url"] == f"{hub.url}/{ALICE_HF}/valley-model" and "/commit/" in job.result["commit_url"]
    phases = list(job.events.filter(data__has_key="phase").values_list("data__phase", flat=True))
    assert phases == ["checking", "preparing", "creating repository", "uploading"]
    assert repo["commits"][-1]["summary"] == "Upload lora adapter of Valley model from Gemma Garage"


def test_it_honours_the_private_flag(finetune, alice_connected, hub):
    assert run_job(hub_push_start(finetune=finetune, repo="open-model", private=False)).status == Job.Status.SUCCEEDED
    assert run_job(hub_push_start(finetune=finetune, repo="closed-model", private=True)).status == Job.Status.SUCCEEDED
    assert hub.repos[f"{ALICE_HF}/open-model"]["private"] is False
    assert hub.repos[f"{ALICE_HF}/closed-model"]["private"] is True


def test_it_pushes_a_new_version_to_an_existing_repository(finetune, alice_connected, hub):
    hub.add_repo(f"{ALICE_HF}/kept", files={"old.txt": b"old"})
    job = run_job(hub_push_start(finetune=finetune, repo=f"{ALICE_HF}/kept", mode="existing"))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert {"old.txt", "README.md", "adapter_config.json"} <= set(hub.repos[f"{ALICE_HF}/kept"]["files"])
    assert "POST /api/repos/create" not in hub.requests
    missing = run_job(hub_push_start(finetune=finetune, repo="not-there", mode="existing"))
    assert missing.status == Job.Status.FAILED and "has no repository “alice-hf/not-there”" in missing.error_message


@pytest.mark.parametrize("failure, message", [
    (("repos/create", 429, {"Retry-After": "37"}), "limiting requests from your account right now (rate limit). Try again in 37 seconds."),
    (("/commit/", 403, {}), "may not write to “alice-hf/valley-model”"),
    (("repos/create", 401, {}), "did not accept your saved sign-in"),
])
def test_it_explains_hub_failures_readably(finetune, alice_connected, hub, failure, message):
    pattern, status, headers = failure
    hub.fail(pattern, status, headers=headers)
    job = run_job(hub_push_start(finetune=finetune, repo="valley-model"))
    assert job.status == Job.Status.FAILED and message in job.error_message, job.error_message
    assert hub.alice_token not in job.error_message + job.error


def test_it_says_when_the_name_is_taken(finetune, alice_connected, hub):
    hub.add_repo(f"{ALICE_HF}/valley-model")
    job = run_job(hub_push_start(finetune=finetune, repo="valley-model", mode="new"))
    assert job.status == Job.Status.FAILED and "“alice-hf/valley-model” is already taken" in job.error_message
    theirs = run_job(hub_push_start(finetune=finetune, repo="someone-else/valley-model"))
    assert theirs.status == Job.Status.FAILED and "belongs to someone else" in theirs.error_message
    assert "someone-else/valley-model" not in hub.repos


def test_it_says_when_the_network_is_down(finetune, alice_connected, hub):
    from apps.hub.models import HubConnection
    from tests.live import free_port

    HubConnection.objects.filter(pk=alice_connected.pk).update(endpoint=f"http://127.0.0.1:{free_port()}")
    job = run_job(hub_push_start(finetune=finetune, repo="valley-model"))
    assert job.status == Job.Status.FAILED and "network seems to be down" in job.error_message


def test_it_keeps_tokens_out_of_pages_events_and_logs(finetune, alice_client, alice_connected, hub, caplog):
    caplog.set_level(logging.DEBUG)
    job = run_job(hub_push_start(finetune=finetune, repo="valley-model"))
    hub.fail("repos/create", 429, headers={"Retry-After": "5"})
    failed = run_job(hub_push_start(finetune=finetune, repo="valley-model-2"))
    assert job.status == Job.Status.SUCCEEDED and failed.status == Job.Status.FAILED
    token = hub.alice_token
    pages = "".join(alice_client.get(url).content.decode() for url in (
        "/hub/", f"/hub/publish/{finetune.code}/", f"/hub/pushes/{job.code}/", f"/hub/pushes/{failed.code}/",
        "/hub/pushes/", f"/jobs/{job.code}/", f"/jobs/{failed.code}/"))
    assert f"{hub.url}/{ALICE_HF}/valley-model" in pages  # the pages did render the pushes
    events = json.dumps(list(JobEvent.objects.values_list("data", flat=True)))
    stored = json.dumps([list(Job.objects.values_list("config", "result", "error", "error_message", "message"))], default=str)
    for text in (pages, events, stored, caplog.text):
        assert token not in text and token[4:-4] not in text


def test_it_answers_404_to_strangers(finetune, alice_connected, bob, bob_client, bob_api, alice_client, hub):
    from apps.hub.connections import hub_connection_create_with_token

    hub_connection_create_with_token(owner=bob, token=hub.bob_token)  # Bob is connected too: still no access
    job = run_job(hub_push_start(finetune=finetune, repo="valley-model"))
    assert bob_client.get(f"/hub/publish/{finetune.code}/").status_code == 404
    assert bob_client.post(f"/hub/publish/{finetune.code}/", {"what": "adapter", "repo": "stolen", "mode": "new"}).status_code == 404
    assert bob_api.post("/api/v1/hub/pushes/", {"finetune": str(finetune.code), "repo": "stolen"}, format="json").status_code == 404
    assert bob_api.get(f"/api/v1/hub/gate/{finetune.code}/").status_code == 404
    for url in (f"/hub/pushes/{job.code}/", f"/jobs/{job.code}/"):
        assert bob_client.get(url).status_code == 404
    for url in (f"/api/v1/hub/pushes/{job.code}/", f"/api/v1/jobs/{job.code}/"):
        assert bob_api.get(url).status_code == 404
    assert bob_api.get("/api/v1/hub/pushes/").json()["results"] == []
    assert "valley-model" not in bob_client.get("/hub/pushes/").content.decode()
    assert Job.objects.filter(kind=Job.Kind.PUSH).count() == 1 and f"{BOB_HF}/stolen" not in hub.repos


def test_it_publishes_from_the_page_and_shows_progress_and_the_link(finetune, alice_client, alice_connected, hub):
    page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert f'href="/hub/publish/{finetune.code}/"' in page
    form = alice_client.get(f"/hub/publish/{finetune.code}/").content.decode()
    assert "Not evaluated" in form and 'data-role="confirm-worse"' not in form and 'value="adapter"' in form
    # The proposed repository is the model's name made valid: a default name ("… · run 1 · …") has dots and spaces.
    finetune_rename(finetune=finetune, name="Lumen Valley v2 · run 3 · SmolLM2-135M-Instruct LoRA · 5 Dec")
    form = alice_client.get(f"/hub/publish/{finetune.code}/").content.decode()
    assert 'value="Lumen-Valley-v2-run-3-SmolLM2-135M-Instruct-LoRA-5-Dec"' in form
    response = alice_client.post(f"/hub/publish/{finetune.code}/", {"what": "adapter", "repo": "from-the-page",
                                                                   "mode": "new", "private": "on"})
    job = Job.objects.get(kind=Job.Kind.PUSH)
    assert response.status_code == 302 and response["Location"] == f"/hub/pushes/{job.code}/"
    assert f'data-job="{job.code}"' in alice_client.get(response["Location"]).content.decode()
    run_job(job)
    done = alice_client.get(f"/hub/pushes/{job.code}/").content.decode()
    assert f'href="{hub.url}/{ALICE_HF}/from-the-page"' in done and "README.md" in done
    assert hub.repos[f"{ALICE_HF}/from-the-page"]["private"] is True


def test_it_refuses_to_publish_without_a_connection_or_a_finished_model(finetune, alice, alice_api, hub, trained):
    with pytest.raises(Exception, match="Connect your Hugging Face account first"):
        hub_push_start(finetune=finetune, repo="x")
    response = alice_api.post("/api/v1/hub/pushes/", {"finetune": str(finetune.code), "repo": "x"}, format="json")
    assert response.status_code == 400 and "Connect your Hugging Face account first" in response.json()["message"]
    unfinished = make_finetune(alice, trained, name="Unfinished")
    unfinished.artifact = ""
    unfinished.save()
    with pytest.raises(Exception, match="not finished training"):
        hub_push_start(finetune=unfinished, repo="x")


def test_it_warns_and_asks_for_confirmation_before_publishing_a_worse_model(alice, alice_client, alice_api, alice_connected,
                                                                             artifacts, trained, hub):
    worse = make_finetune(alice, trained, name="Worse model", evaluation=WORSE)
    page = alice_client.get(f"/hub/publish/{worse.code}/").content.decode()
    assert 'data-gate="worse"' in page and "scores 0.380 against 0.410" in page and 'data-role="confirm-worse"' in page
    unconfirmed = alice_client.post(f"/hub/publish/{worse.code}/", {"what": "adapter", "repo": "worse", "mode": "new"})
    assert unconfirmed.status_code == 400 and "Confirm that you want to publish it anyway" in unconfirmed.content.decode()
    with pytest.raises(ConfirmationRequired):
        hub_push_start(finetune=worse, repo="worse")
    api = alice_api.post("/api/v1/hub/pushes/", {"finetune": str(worse.code), "repo": "worse"}, format="json")
    assert api.status_code == 400 and api.json()["code"] == "confirmation_required"
    assert not Job.objects.filter(kind=Job.Kind.PUSH).exists()
    confirmed = alice_client.post(f"/hub/publish/{worse.code}/", {"what": "adapter", "repo": "worse", "mode": "new",
                                                                 "confirm_worse": "on"})
    assert confirmed.status_code == 302
    assert Job.objects.get(kind=Job.Kind.PUSH).config["gate"] == {"evaluated": True, "worse": True, "confirmed": True}
    # Within the allowed drop, no confirmation is needed.
    hub_preferences_update(owner=alice, gate_threshold=0.05)
    assert 'data-gate="ok"' in alice_client.get(f"/hub/publish/{worse.code}/").content.decode()
    assert hub_push_start(finetune=worse, repo="worse-but-allowed").config["gate"]["worse"] is False
    better = make_finetune(alice, trained, name="Better model", evaluation=BETTER)
    gate = alice_api.get(f"/api/v1/hub/gate/{better.code}/").json()
    assert gate["evaluated"] and not gate["worse"] and gate["tuned"] == 0.62 and gate["metric"] == "token_f1"


def test_it_blocks_worse_models_when_the_setting_says_so(alice, alice_client, alice_api, alice_connected, artifacts,
                                                        trained, hub):
    worse = make_finetune(alice, trained, name="Worse model", evaluation=WORSE)
    unevaluated = make_finetune(alice, trained, name="Unevaluated model")
    assert alice_client.post("/hub/preferences/", {"repo_pattern": "{name}", "gate_threshold": "0",
                                                   "block_worse": "on"}).status_code == 302
    page = alice_client.get(f"/hub/publish/{worse.code}/").content.decode()
    assert 'data-gate="blocked"' in page and "block publishing of worse models" in page and 'data-role="publish"' not in page
    response = alice_api.post("/api/v1/hub/pushes/", {"finetune": str(worse.code), "repo": "worse", "confirm_worse": True},
                              format="json")
    assert response.status_code == 409 and response.json()["code"] == "blocked"
    assert "block publishing of worse models" in response.json()["message"]
    posted = alice_client.post(f"/hub/publish/{worse.code}/", {"what": "adapter", "repo": "worse", "mode": "new",
                                                              "confirm_worse": "on"})
    assert posted.status_code == 409
    with pytest.raises(PublishBlocked):
        hub_push_start(finetune=worse, repo="worse", confirm_worse=True)
    assert not Job.objects.filter(kind=Job.Kind.PUSH).exists()
    # A model without an evaluation is shown as such and never blocked.
    assert "Not evaluated" in alice_client.get(f"/hub/publish/{unevaluated.code}/").content.decode()
    accepted = alice_api.post("/api/v1/hub/pushes/", {"finetune": str(unevaluated.code), "repo": "plain"}, format="json")
    assert accepted.status_code == 202 and accepted.json()["kind"] == "push"


def _finish_training(finetune):
    finetune.job = job_create(owner=finetune.owner, kind=Job.Kind.TRAIN, queue="gpu", config={"finetune": finetune.pk},
                              start=False)
    finetune.save(update_fields=["job"])
    job_finish(job=finetune.job, status=Job.Status.SUCCEEDED, result={"finetune": str(finetune.code)})
    return finetune.job


def test_it_pushes_automatically_when_training_succeeds(alice, alice_connected, artifacts, trained, hub):
    hub_preferences_update(owner=alice, auto_push=True, repo_pattern="{name}-auto", auto_private=False)
    finetune = make_finetune(alice, trained, name="Valley model")
    train_job = _finish_training(finetune)
    push = Job.objects.get(kind=Job.Kind.PUSH)
    assert push.config["repo_id"] == f"{ALICE_HF}/Valley-model-auto" and push.config["automatic"] is True
    assert push.config["mode"] == "any" and push.config["private"] is False
    lines = [event.data.get("line", "") for event in train_job.events.filter(type=JobEvent.Type.LOG)]
    assert f"Automatic push to Hugging Face queued: {ALICE_HF}/Valley-model-auto" in lines
    assert run_job(push).status == Job.Status.SUCCEEDED
    assert hub.repos[f"{ALICE_HF}/Valley-model-auto"]["private"] is False
    # The next model with the same name goes to the same repository, as a new commit.
    second = make_finetune(alice, trained, name="Valley model")
    _finish_training(second)
    assert run_job(Job.objects.filter(kind=Job.Kind.PUSH).first()).status == Job.Status.SUCCEEDED
    assert len(hub.repos[f"{ALICE_HF}/Valley-model-auto"]["commits"]) == 2


def test_it_skips_the_automatic_push_of_worse_models_and_without_the_setting(alice, bob, alice_connected, artifacts,
                                                                           trained, hub):
    quiet = make_finetune(bob, trained, name="Bob's model")  # Bob never turned the automatic push on
    _finish_training(quiet)
    assert not Job.objects.filter(kind=Job.Kind.PUSH).exists()
    hub_preferences_update(owner=alice, auto_push=True)
    worse = make_finetune(alice, trained, name="Worse model", evaluation=WORSE)
    train_job = _finish_training(worse)
    assert not Job.objects.filter(kind=Job.Kind.PUSH).exists()
    lines = [event.data.get("line", "") for event in train_job.events.filter(type=JobEvent.Type.LOG)]
    assert [line for line in lines if line.startswith("Automatic push to Hugging Face skipped") and "it is worse" in line]


def test_it_checks_the_repository_name_pattern(alice):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="may only use"):
        hub_preferences_update(owner=alice, repo_pattern="{owner}-{name}")
    with pytest.raises(ValidationError, match="not a valid repository name"):
        hub_preferences_update(owner=alice, repo_pattern="{name} with spaces")
    assert hub_preferences_update(owner=alice, repo_pattern="{name}-{date}").repo_pattern == "{name}-{date}"


def test_it_keeps_preferences_per_user_through_the_api(alice_api, bob_api):
    response = alice_api.put("/api/v1/hub/preferences/", {"block_worse": True, "gate_threshold": 0.02,
                                                           "repo_pattern": "{name}-{id}"}, format="json")
    assert response.status_code == 200 and response.json()["block_worse"] is True
    assert alice_api.get("/api/v1/hub/preferences/").json()["repo_pattern"] == "{name}-{id}"
    assert bob_api.get("/api/v1/hub/preferences/").json() == {"auto_push": False, "repo_pattern": "{name}",
                                                              "auto_private": True, "gate_threshold": 0.0,
                                                              "block_worse": False}
    bad = alice_api.put("/api/v1/hub/preferences/", {"repo_pattern": "{owner}"}, format="json")
    assert bad.status_code == 400 and "may only use" in bad.json()["message"]
