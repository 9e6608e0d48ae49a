"""Model-aware defaults in the web: the plan endpoint (recommended settings, reasons, warnings and the planner's
estimate before anything is queued), the training forms pre-filled from it with the model picker, and the API's
defaults when a request leaves the model or the settings out."""
import pytest
from rest_framework.test import APIClient

from apps.datasets.models import QAPair, VersionExample
from apps.datasets.services import dataset_version_freeze
from apps.training.models import FineTune
from apps.training.plans import NO_WORKER_NOTE, default_model
from tests.datasets.curation_helpers import dataset_with_pairs
from workers.common.catalogue import CATALOGUE
from workers.common.planner import GIB, Device, device_facts, device_facts_path, write_device_facts
from workers.common.catalogue import TINY_MODEL_ID

pytestmark = pytest.mark.django_db
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(autouse=True)
def no_worker_yet(settings, tmp_path, monkeypatch):
    """A var folder of the test's own (no GPU worker has recorded its device there) and a server not told to stay
    offline, so that Hub ids pass as they do on a connected server."""
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


def worker_reported(folder, device: Device):
    write_device_facts(device_facts(device), device_facts_path(folder))


def bigger_dataset(owner, pairs: int = 60):
    dataset = dataset_with_pairs(owner)
    QAPair.objects.bulk_create(QAPair(dataset=dataset, question=f"What is item number {i} called in the valley?",
                                      answer=f"Item {i} is called the lantern of the copper hills.")
                               for i in range(pairs))
    return dataset


def test_it_plans_a_run_on_the_owners_version_before_anything_is_queued(alice_api, alice):
    version = dataset_version_freeze(dataset=dataset_with_pairs(alice))
    response = alice_api.get("/api/v1/plan/", {"base_model": TINY_MODEL_ID, "version": str(version.code)})
    assert response.status_code == 200, response.content
    plan = response.json()
    trained = version.examples.filter(split=VersionExample.Split.TRAIN).count()
    assert plan["examples"] == trained == 4 and plan["test_only"] and plan["base_model"] == TINY_MODEL_ID
    assert plan["options"]["learning_rate"] == 1e-2 and plan["options"]["max_length"] % 16 == 0
    assert plan["plan"]["peak_gib"] > 0 and plan["seconds_per_step"] > 0 and plan["train_seconds"] > 0
    assert plan["summary"].startswith("Peak memory ~") and "per step" in plan["summary"] and "in all" in plan["summary"]
    assert "Only 4 pairs: too few to learn from; add documents or generate more pairs." in plan["warnings"]
    assert any("99% of the 4 training examples" in reason for reason in plan["reasons"])
    assert plan["device"]["source"] == "this machine" and NO_WORKER_NOTE in plan["notes"]


def test_it_estimates_for_the_device_the_gpu_worker_recorded(alice_api, alice, no_worker_yet):
    worker_reported(no_worker_yet, Device("cuda", "NVIDIA H200", 140 * GIB, 7e14))
    dataset = bigger_dataset(alice, pairs=200)
    plan = alice_api.get("/api/v1/plan/", {"base_model": SMOLLM2, "dataset": str(dataset.code)}).json()
    assert plan["device"] == {"kind": "cuda", "name": "NVIDIA H200", "memory_gib": 140.0, "source": "worker",
                              "note": "Estimated for the GPU worker's GPU: NVIDIA H200."}
    assert "of 140 GiB" in plan["summary"] and plan["budget_minutes"] is None and not plan["budget_limited"]
    assert plan["options"]["learning_rate"] == CATALOGUE[SMOLLM2].recommended.learning_rate("lora")
    # The examples are those freezing would keep for training: the dataset's pairs less the held-out ones.
    version = dataset_version_freeze(dataset=dataset)
    assert plan["examples"] == version.examples.filter(split=VersionExample.Split.TRAIN).count() < 204
    # The document's two chunks are trained too, as passages (the documents' text is on by default).
    assert plan["passages"] == 2
    assert any(f"epochs of {plan['examples']} pairs and 2 passages of the documents' text at batch 8 = "
               f"{plan['steps']} steps" in reason for reason in plan["reasons"])
    without = alice_api.get("/api/v1/plan/", {"base_model": SMOLLM2, "dataset": str(dataset.code),
                                              "document_text": "false"}).json()
    assert without["passages"] == 0 and without["steps"] < plan["steps"]


def test_it_fits_a_cpu_workers_run_into_the_time_budget_and_keeps_chosen_values(alice_api, alice, settings,
                                                                                 no_worker_yet):
    worker_reported(no_worker_yet, Device("cpu", "CPU (2 cores)", 16 * GIB, 1e11))
    settings.GARAGE_CPU_TIME_BUDGET_MINUTES = 2
    dataset = bigger_dataset(alice)
    plan = alice_api.get("/api/v1/plan/", {"base_model": SMOLLM2, "dataset": str(dataset.code)}).json()
    assert plan["budget_limited"] and plan["budget_minutes"] == 2
    assert plan["steps"] * plan["seconds_per_step"] <= 2 * 60
    assert any("steps fit the 2-minute budget" in reason for reason in plan["reasons"])
    chosen = alice_api.get("/api/v1/plan/", {"base_model": SMOLLM2, "dataset": str(dataset.code), "max_steps": 500,
                                             "batch_size": 2, "max_length": 64}).json()
    assert {k: chosen["options"][k] for k in ("max_steps", "batch_size", "max_length")} == \
        {"max_steps": 500, "batch_size": 2, "max_length": 64}
    assert any("over the 2-minute budget" in warning for warning in chosen["warnings"])


def test_it_answers_strangers_404_anonymous_visitors_no_and_bad_input_400(alice, bob_api, alice_api):
    dataset = dataset_with_pairs(alice)
    version = dataset_version_freeze(dataset=dataset)
    assert bob_api.get("/api/v1/plan/", {"version": str(version.code)}).status_code == 404
    assert bob_api.get("/api/v1/plan/", {"dataset": str(dataset.code)}).status_code == 404
    assert APIClient().get("/api/v1/plan/", {"version": str(version.code)}).status_code in (401, 403)
    response = alice_api.get("/api/v1/plan/", {"base_model": "/etc", "version": str(version.code)})
    assert response.status_code == 400 and "model folders of this server" in response.json()["message"]
    assert alice_api.get("/api/v1/plan/", {"batch_size": 0}).status_code == 400
    # Without data (the pipeline form, before its documents are read) there is still a plan.
    plan = alice_api.get("/api/v1/plan/").json()
    assert plan["base_model"] == default_model() and plan["examples"] == 0 and plan["warnings"][-1:] != ["Only"]


def test_it_fills_what_an_api_request_leaves_out_from_the_recommendation(alice_api, alice):
    dataset = bigger_dataset(alice)
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code)}, format="json")
    assert response.status_code == 201, response.content
    finetune = FineTune.objects.get()
    assert finetune.base_model == default_model()
    recommended = CATALOGUE[finetune.base_model].recommended
    assert finetune.config["learning_rate"] == recommended.learning_rate("lora")
    assert finetune.config["lora_r"] == recommended.lora_r and finetune.config["max_length"] % 16 == 0
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code), "base_model": SMOLLM2, "method": "full",
                                                     "options": {"batch_size": 4}}, format="json")
    config = FineTune.objects.get(code=response.json()["code"]).config
    assert config["learning_rate"] == CATALOGUE[SMOLLM2].recommended.full_learning_rate != 1e-2
    assert config["batch_size"] == 4 and config["epochs"] == 0
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code), "base_model": SMOLLM2,
                                                     "options": {"epochs": 2, "learning_rate": 1e-3}}, format="json")
    config = FineTune.objects.get(code=response.json()["code"]).config
    assert config["epochs"] == 2 and config["learning_rate"] == 1e-3


def test_it_pre_fills_the_training_form_with_the_recommendation_for_its_data(alice):
    from apps.training.forms import TrainingOptionsForm

    version = dataset_version_freeze(dataset=bigger_dataset(alice))
    form = TrainingOptionsForm(user=alice, version=version)
    picker = form.fields["base_model"].widget
    assert form.fields["base_model"].initial == picker.plan["base_model"] == default_model()
    for name in ("max_steps", "learning_rate", "batch_size", "max_length", "lora_r", "lora_alpha", "warmup_ratio"):
        assert form.fields[name].initial == picker.plan["options"][name], name
    groups = dict(picker.groups)
    assert [model for model, _ in groups["Test model"]] == [TINY_MODEL_ID]
    assert "test model" in groups["Test model"][0][1]


def test_it_shows_the_picker_and_the_plan_on_the_training_pages(alice_client, alice):
    dataset = bigger_dataset(alice)
    version = dataset_version_freeze(dataset=dataset)
    for url in (f"/datasets/versions/{version.code}/", f"/datasets/{dataset.code}/", "/"):
        html = alice_client.get(url).content.decode()
        assert 'data-role="model-select"' in html and 'data-role="training-plan"' in html, url
        assert '<optgroup label="Test model">' in html and "training/plan.js" in html, url
        assert "Peak memory ~" in html and NO_WORKER_NOTE in html, url
    html = alice_client.get(f"/datasets/versions/{version.code}/").content.decode()
    assert f'data-version="{version.code}"' in html and "epochs of" in html


def test_it_trains_with_the_settings_the_form_posts(alice_client, alice):
    from tests.datasets.test_pages import training_form_data

    version = dataset_version_freeze(dataset=bigger_dataset(alice))
    data = training_form_data(base_model=SMOLLM2, max_steps=7, lora_r=4, learning_rate=3e-4)
    response = alice_client.post(f"/datasets/versions/{version.code}/train/", data)
    assert response.status_code == 302
    finetune = FineTune.objects.get()
    assert finetune.base_model == SMOLLM2
    assert {k: finetune.config[k] for k in ("max_steps", "lora_r", "learning_rate")} == \
        {"max_steps": 7, "lora_r": 4, "learning_rate": 3e-4}
    # Left empty, LoRA's alpha is the model's own recommendation.
    alice_client.post(f"/datasets/versions/{version.code}/train/", {**data, "lora_alpha": ""})
    assert FineTune.objects.latest("created_at").config["lora_alpha"] == CATALOGUE[SMOLLM2].recommended.lora_alpha


def test_it_starts_a_models_options_from_its_own_settings():
    from apps.training.services import finetune_options

    assert finetune_options({})["learning_rate"] == 1e-2  # the engine's default: the tiny model's
    options = finetune_options({"batch_size": 2}, base_model=SMOLLM2, method="full")
    recommended = CATALOGUE[SMOLLM2].recommended
    assert options["learning_rate"] == recommended.full_learning_rate and options["batch_size"] == 2
    assert options["lora_r"] == recommended.lora_r and options["warmup_ratio"] == recommended.warmup_ratio


def test_it_refuses_a_hub_model_an_offline_server_does_not_have(monkeypatch, tmp_path):
    from django.core.exceptions import ValidationError

    from apps.training.base_models import base_model_clean

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    for name in (SMOLLM2, "someone/their-model"):
        with pytest.raises(ValidationError, match="works offline"):
            base_model_clean(name=name)
    assert base_model_clean(name=TINY_MODEL_ID) == TINY_MODEL_ID
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert base_model_clean(name=SMOLLM2) == SMOLLM2


def test_the_pipeline_form_leaves_steps_and_length_to_the_documents(alice, alice_client):
    from apps.training.forms import PipelineForm

    form = PipelineForm()
    for name in PipelineForm.FROM_DOCUMENTS:
        assert form.fields[name].initial is None and not form.fields[name].required
        assert form.fields[name].widget.attrs["data-from-documents"] == "1"
    assert form.fields["learning_rate"].initial == form.fields["base_model"].widget.plan["options"]["learning_rate"]
    page = alice_client.get("/").content.decode()
    assert 'placeholder="From your documents"' in page and "recall" in page
