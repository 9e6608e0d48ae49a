"""Exports through the services, the job, the pages and the API: merged model, GGUF, model card, downloads."""
import json
import shutil
import zipfile

import pytest
from django.core.exceptions import ValidationError

from apps.core.models import Job
from apps.datasets.services import dataset_create, dataset_version_freeze, qa_pair_create
from apps.training.exports import (finetune_card_text, finetune_export_start, finetune_output_list,
                                   finetune_output_path)
from apps.training.models import FineTune
from apps.training.jobs import finetune_run
from apps.training.services import finetune_output_dir
from tests.fixtures.jobs import run_job
from workers.engine.export import KINDS, model_card, zip_folder
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db

PAIRS = [(f"Where does item{i} live?", f"Item{i} lives in {city}.")
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"])]
METRICS = {"backend": "trl", "train_steps": 30, "loss_first": 6.2, "loss_last": 0.3, "em_before": 0.0, "em_after": 0.875,
           "tokens_per_s": 900.0, "train_seconds": 4.0, "examples": len(PAIRS), "resumed_from_step": None,
           "code_version": "0.1.0+abc1234", "eval_loss": 1.2, "eval_losses": [{"step": 30, "eval_loss": 1.2}],
           "lora_target_modules": ["q_proj", "v_proj"], "peak_memory_gib": None, "plan": None}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The folder a LoRA run of the tiny model leaves (base/, model/, adapter.zip), copied into each test's artifacts
    folder. The adapter is randomly initialised rather than trained: exports only need its files, and the engine
    tests (tests/workers/test_export.py) check merges and GGUF files of really trained ones."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.engine.train.tiny_model import build_tiny_gemma3

    out = tmp_path_factory.mktemp("trained")
    base = build_tiny_gemma3(out / "base", [f"{q} {a}" for q, a in PAIRS])
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"))
    model.save_pretrained(out / "model")
    AutoTokenizer.from_pretrained(base).save_pretrained(out / "model")
    zip_folder(out / "model", out / "adapter.zip")
    return out


@pytest.fixture
def bob_client(bob):
    from django.test import Client

    client = Client()  # not the `client` fixture: alice_client is that one, signed in as alice
    client.force_login(bob)
    return client


@pytest.fixture
def artifacts(settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "artifacts"
    return settings.GARAGE_ARTIFACTS_DIR


def _finetune(owner, method=FineTune.Method.LORA, name="Valley model") -> FineTune:
    dataset = dataset_create(owner=owner, name="Valley notes")
    for question, answer in PAIRS:
        qa_pair_create(dataset=dataset, question=question, answer=answer)
    version = dataset_version_freeze(dataset=dataset)
    return FineTune.objects.create(owner=owner, dataset=dataset, version=version, base_model="tiny-gemma3", method=method,
                                   name=name, config={"max_steps": 30, "learning_rate": 0.01, "lora_r": 16})


@pytest.fixture
def finetune(alice, artifacts, trained):
    """Alice's finished LoRA fine-tune: the trained folder under the artifacts folder, metrics and card recorded."""
    finetune = _finetune(alice)
    out = finetune_output_dir(finetune)
    shutil.copytree(trained, out, ignore=shutil.ignore_patterns("checkpoints", "exports"))
    finetune.metrics = METRICS
    finetune.artifact = f"{finetune.code}/adapter.zip"
    finetune.save()
    return finetune


@pytest.fixture
def exported(finetune):
    """The fine-tune with a (small, stand-in) file for every export kind, recorded as the export job records them."""
    exports = finetune_output_dir(finetune) / "exports"
    exports.mkdir()
    for kind in KINDS:
        path = exports / ("README.md" if kind == "card" else f"{kind}.zip")
        path.write_bytes(f"contents of {kind}".encode())
        finetune.outputs[kind] = {"path": f"{finetune.code}/exports/{path.name}", "bytes": path.stat().st_size,
                                  "files": [path.name]}
    finetune.save()
    return finetune


EVALUATION = {"metric": "token_f1", "base": 0.2, "tuned": 0.55, "examples": 20,
              "recall": {"n": 12, "token_f1": {"base": 0.21, "tuned": 0.64}, "exact_match": {"base": 0.083, "tuned": 0.5}},
              "unseen": None,
              "control": {"n": 30, "token_f1": {"base": 0.48, "tuned": 0.45}, "exact_match": {"base": 0.3, "tuned": 0.3}}}
CARD_FACTS = {"name": "Valley model", "base_model": "pypi/SmolLM2-135M-Instruct", "method": "lora",
              "method_display": "LoRA adapter", "dataset": {"name": "Valley notes", "version": 1, "examples": 8},
              "hyperparameters": {"max_steps": 30}, "metrics": {**METRICS, "evaluation": EVALUATION}, "stem": "valley"}


def _front_matter(card: str) -> str:
    return card.split("---")[1]


def test_it_shows_recall_unseen_and_control_first_and_training_exact_match_below(alice):
    card = model_card(CARD_FACTS)
    recall = next(line for line in card.splitlines() if line.startswith("| Recall"))
    control = next(line for line in card.splitlines() if line.startswith("| Control"))
    unseen = next(line for line in card.splitlines() if line.startswith("| Unseen facts"))
    assert "| 12 | 0.210 → 0.640 (+0.430) | 0.083 → 0.500 (+0.417) |" in recall
    assert "| 30 | 0.480 → 0.450 (-0.030) | 0.300 → 0.300 (+0.000) |" in control and "forgetting" in control
    assert unseen.count("not measured") == 2
    order = [card.index(text) for text in ("| Recall", "| Unseen facts", "| Control",
                                           "| Exact match on the training questions | 0.000 | 0.875 |", "## Training data")]
    assert order == sorted(order) and card.index("## Evaluation") < card.index("## Training data")


def test_it_says_not_measured_for_a_model_without_the_evaluation(alice):
    for evaluation in (None, {"metric": "token_f1", "base": 0.1, "tuned": 0.2}, {"recall": None, "unseen": {}}):
        metrics = {**METRICS} if evaluation is None else {**METRICS, "evaluation": evaluation}
        card = model_card({**CARD_FACTS, "metrics": metrics})
        rows = [line for line in card.splitlines() if line.startswith(("| Recall", "| Unseen facts", "| Control"))]
        assert len(rows) == 3 and all(row.count("not measured") == 2 for row in rows)
        assert "| Exact match on the training questions | 0.000 | 0.875 |" in card


def test_it_names_the_base_by_its_hub_id_and_never_by_a_server_path(alice):
    packaged = model_card(CARD_FACTS)
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in _front_matter(packaged)
    assert "pypi/" not in _front_matter(packaged) and "**HuggingFaceTB/SmolLM2-135M-Instruct**" in packaged
    assert 'AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")' in packaged
    assert "base_model: google/gemma-3-270m\n" in model_card({**CARD_FACTS, "base_model": "pypi/gemma-3-270m"})
    hub = model_card({**CARD_FACTS, "base_model": "someone/their-model"})
    assert "base_model: someone/their-model" in _front_matter(hub)
    for base, name in (("tiny-gemma3", "tiny-gemma3"), ("/srv/garage/models/valley-llama", "valley-llama")):
        card = model_card({**CARD_FACTS, "base_model": base})
        assert "base_model:" not in _front_matter(card) and f"**{name}**" in card
        assert "/srv/" not in card and "must supply the base model" in card
        assert "AutoPeftModelForCausalLM" not in card  # it would look for the base on the Hub


def test_it_lists_only_the_outputs_that_exist(alice):
    adapter_only = model_card(CARD_FACTS)
    assert "gguf" not in adapter_only.lower() and "merged" not in adapter_only.lower()
    assert "adapter_model.safetensors" in adapter_only
    merged = model_card({**CARD_FACTS, "outputs": ["merged"]})
    assert "### The merged model (transformers)" in merged and "gguf" not in merged.lower()
    q8 = model_card({**CARD_FACTS, "outputs": ["gguf_q8_0"]})
    assert "valley-q8_0.gguf" in q8 and "f16" not in q8 and "- gguf" in _front_matter(q8) and "merged" not in q8.lower()
    full = model_card({**CARD_FACTS, "method": "full", "method_display": "Full fine-tune"})
    assert "### The model (transformers)" in full and "adapter" not in full.lower() and "gguf" not in full.lower()




def test_it_writes_the_model_card_into_the_adapter_zip_when_training_finishes(alice, artifacts, trained, monkeypatch):
    finetune = _finetune(alice)

    def fake_train(config, reporter):  # training itself is tested in tests/workers; here only what follows it
        shutil.copytree(trained / "model", f"{config.output_dir}/model")
        archive = zip_folder(f"{config.output_dir}/model", f"{config.output_dir}/adapter.zip")
        return {**METRICS, "artifact": str(archive), "passages": 0, "replayed": 0}

    monkeypatch.setattr("apps.training.jobs.train", fake_train)
    finetune_run(finetune=finetune, reporter=RecordingReporter())
    finetune.refresh_from_db()
    with zipfile.ZipFile(artifacts / finetune.artifact) as archive:
        card = archive.read("README.md").decode()
        assert "adapter_model.safetensors" in archive.namelist()
        # The base is named as the model's own name, not by the folder it had on this server.
        assert json.loads(archive.read("adapter_config.json"))["base_model_name_or_path"] == "tiny-gemma3"
    assert json.loads((finetune_output_dir(finetune) / "model" / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == "tiny-gemma3"
    assert "# Valley model" in card and "| Valley notes | 1 | 8 |" in card and "**tiny-gemma3**" in card
    assert "| Exact match on the training questions | 0.000 | 0.875 |" in card
    assert finetune_card_text(finetune=finetune) == card and finetune.outputs["card"]["files"] == ["README.md"]


def test_it_runs_an_export_job_that_makes_and_records_every_output(finetune, artifacts):
    job = finetune_export_start(finetune=finetune, kinds=["gguf_q8_0", "card", "merged", "gguf_f16"])
    assert job.kind == Job.Kind.EXPORT and job.queue == "gpu" and job.owner == finetune.owner
    assert job.config == {"finetune": finetune.pk, "kinds": ["merged", "gguf_f16", "gguf_q8_0", "card"]}
    job = run_job(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["outputs"] == sorted(KINDS)
    finetune.refresh_from_db()
    assert set(finetune.outputs) == set(KINDS)
    with zipfile.ZipFile(finetune_output_path(finetune=finetune, name="merged")) as archive:
        assert {"model.safetensors", "tokenizer.json", "README.md"} <= set(archive.namelist())
        config = json.loads(archive.read("config.json"))
    assert config.get("_name_or_path", "tiny-gemma3") == "tiny-gemma3" and str(artifacts) not in json.dumps(config)
    with zipfile.ZipFile(finetune_output_path(finetune=finetune, name="gguf_q8_0")) as archive:
        assert archive.namelist() == ["Valley-model-q8_0.gguf", "README.md"]
    assert [item["name"] for item in finetune_output_list(finetune=finetune)] == ["adapter", *KINDS]
    phases = list(job.events.filter(data__has_key="phase").values_list("data__phase", flat=True))
    assert phases == ["merging", "converting to GGUF", "writing model card", "zipping"]
    card = finetune_card_text(finetune=finetune)
    assert "| Valley notes | 1 | 8 |" in card and "Valley-model-f16.gguf" in card and "### The merged model" in card
    with zipfile.ZipFile(finetune_output_path(finetune=finetune, name="adapter")) as archive:
        assert archive.read("README.md").decode() == card  # the training zip's card lists the new outputs too


def test_it_rewrites_the_card_when_an_export_finishes_with_only_what_exists(finetune, artifacts):
    from apps.training.jobs import finetune_card_write

    finetune_card_write(finetune=finetune)
    before = finetune_card_text(finetune=finetune)
    assert "gguf" not in before.lower() and "merged" not in before.lower()
    assert run_job(finetune_export_start(finetune=finetune, kinds=["merged"])).status == Job.Status.SUCCEEDED
    finetune.refresh_from_db()
    after = finetune_card_text(finetune=finetune)
    assert "### The merged model (transformers)" in after and "gguf" not in after.lower()
    model_card_file = finetune_output_dir(finetune) / "model" / "README.md"
    assert model_card_file.read_text() == after
    with zipfile.ZipFile(finetune_output_path(finetune=finetune, name="merged")) as archive:
        assert archive.read("README.md").decode() == after


def test_it_fails_the_job_readably_when_the_converter_is_missing(finetune, settings, tmp_path):
    settings.GARAGE_GGUF_CONVERTER_DIR = str(tmp_path / "no-converter")
    job = run_job(finetune_export_start(finetune=finetune, kinds=["gguf_f16"]))
    assert job.status == Job.Status.FAILED
    assert "needs llama.cpp's converter" in job.error_message and "GARAGE_GGUF_CONVERTER_DIR" in job.error_message


def test_it_refuses_exports_it_cannot_make(finetune, alice, artifacts):
    for kinds, message in (([], "Choose what to export"), (["onnx"], "Choose what to export")):
        with pytest.raises(ValidationError, match=message):
            finetune_export_start(finetune=finetune, kinds=kinds)
    unfinished = _finetune(alice, name="Still training")
    with pytest.raises(ValidationError, match="not finished training"):
        finetune_export_start(finetune=unfinished, kinds=["card"])
    full = _finetune(alice, method=FineTune.Method.FULL, name="Full")
    full.artifact = f"{finetune.code}/adapter.zip"  # any existing zip: finished
    with pytest.raises(ValidationError, match="fully fine-tuned"):
        finetune_export_start(finetune=full, kinds=["merged"])
    finetune_export_start(finetune=finetune, kinds=["card"])
    with pytest.raises(ValidationError, match="already queued or running"):
        finetune_export_start(finetune=finetune, kinds=["gguf_f16"])
    assert Job.objects.filter(kind=Job.Kind.EXPORT).count() == 1


def test_it_shows_outputs_card_and_export_buttons_to_the_owner_only(exported, alice_client, bob_client):
    (finetune_output_dir(exported) / "exports" / "README.md").write_text("# Valley model\n\nA card for <everyone>.")
    page = alice_client.get(f"/training/{exported.code}/").content.decode()
    assert 'data-role="export-merged"' in page and 'data-role="export-gguf"' in page
    assert 'data-role="export-card"' not in page  # a card exists already
    for name in ("adapter", *KINDS):
        assert f'href="/training/{exported.code}/outputs/{name}/download/"' in page
    assert "A card for &lt;everyone&gt;." in page  # shown as text, escaped
    assert bob_client.get(f"/training/{exported.code}/").status_code == 404


def test_it_starts_an_export_from_the_page_and_shows_its_progress(finetune, alice_client, bob_client):
    assert bob_client.post(f"/training/{finetune.code}/exports/", {"kinds": ["merged"]}).status_code == 404
    assert not Job.objects.filter(kind=Job.Kind.EXPORT).exists()
    response = alice_client.post(f"/training/{finetune.code}/exports/", {"kinds": ["gguf_f16", "gguf_q8_0"]})
    assert response.status_code == 302 and response["Location"] == f"/training/{finetune.code}/"
    job = Job.objects.get(kind=Job.Kind.EXPORT)
    assert job.config["kinds"] == ["gguf_f16", "gguf_q8_0"] and job.title == "Export Valley model: GGUF f16, GGUF q8_0"
    page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert f'data-job="{job.code}"' in page and "An export is running" in page
    # The buttons wait, hidden, to come back when the export ends (tests/core/test_job_browser.py)
    assert f'data-role="export-buttons" data-show-for="{job.code}" data-show-when="final" hidden' in page
    refused = alice_client.post(f"/training/{finetune.code}/exports/", {"kinds": ["merged"]}, follow=True)
    assert "already queued or running" in refused.content.decode()


def test_it_serves_each_output_to_the_owner_only(exported, alice_client, alice_api, bob_client, bob_api):
    for name in ("adapter", *KINDS):
        path = finetune_output_path(finetune=exported, name=name)
        for response in (alice_client.get(f"/training/{exported.code}/outputs/{name}/download/"),
                         alice_api.get(f"/api/v1/finetunes/{exported.code}/outputs/{name}/download/")):
            assert response.status_code == 200, name
            assert b"".join(response.streaming_content) == path.read_bytes()
            assert f'filename="Valley-model-{path.name}"' in response["Content-Disposition"]
    for name in ("adapter", *KINDS):
        assert bob_client.get(f"/training/{exported.code}/outputs/{name}/download/").status_code == 404
        assert bob_api.get(f"/api/v1/finetunes/{exported.code}/outputs/{name}/download/").status_code == 404
    for name in ("model", "nothing", "..", "gguf_q4"):  # a LoRA run has no full-model zip; unknown names
        assert alice_client.get(f"/training/{exported.code}/outputs/{name}/download/").status_code == 404, name


def test_it_keeps_downloads_inside_the_artifacts_folder(exported, artifacts, alice_client):
    (artifacts.parent / "secret.txt").write_text("not yours")
    exported.outputs["merged"]["path"] = "../secret.txt"
    exported.save()
    assert finetune_output_path(finetune=exported, name="merged") is None
    assert alice_client.get(f"/training/{exported.code}/outputs/merged/download/").status_code == 404


def test_it_exports_and_lists_outputs_through_the_api(exported, alice_api, bob_api):
    response = alice_api.post(f"/api/v1/finetunes/{exported.code}/exports/", {"kinds": ["merged", "card"]}, format="json")
    assert response.status_code == 202 and response.json()["kind"] == "export"
    assert Job.objects.get(code=response.json()["code"]).config["kinds"] == ["merged", "card"]
    again = alice_api.post(f"/api/v1/finetunes/{exported.code}/exports/", {"kinds": ["gguf_f16"]}, format="json")
    assert again.status_code == 400 and "already queued or running" in again.json()["message"]
    assert alice_api.post(f"/api/v1/finetunes/{exported.code}/exports/", {"kinds": ["onnx"]}, format="json").status_code == 400
    listed = alice_api.get(f"/api/v1/finetunes/{exported.code}/outputs/").json()
    assert [item["name"] for item in listed] == ["adapter", *KINDS]
    assert listed[1]["download_url"] == f"http://testserver/api/v1/finetunes/{exported.code}/outputs/merged/download/"
    assert listed[1]["bytes"] == len(b"contents of merged") and listed[1]["label"] == "Merged model (.zip)"
    assert bob_api.get(f"/api/v1/finetunes/{exported.code}/outputs/").status_code == 404
    assert bob_api.post(f"/api/v1/finetunes/{exported.code}/exports/", {"kinds": ["card"]}, format="json").status_code == 404
    assert Job.objects.filter(kind=Job.Kind.EXPORT).count() == 1


def test_it_documents_the_export_endpoints_in_the_schema(alice_api):
    schema = alice_api.get("/api/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert "/api/v1/finetunes/{code}/exports/" in paths and "/api/v1/finetunes/{code}/outputs/" in paths
    download = paths["/api/v1/finetunes/{code}/outputs/{name}/download/"]["get"]
    assert next(p for p in download["parameters"] if p["name"] == "name")["schema"]["enum"] == sorted(["adapter", "model", *KINDS])
