"""One registry of tuned models: a GRPO run registers its model, which then works wherever a fine-tune does (the
playground and /v1, benchmarks, the held-out evaluation, merged and GGUF exports, the Hub push and its gate); a
fine-tune or a GRPO run starts from one of the owner's models; lineage pages show the chain both ways."""
import re
import zipfile

import pytest
from django.http import Http404

from apps.accounts.services import api_token_create
from apps.core.models import Job
from apps.evaluation.heldout.services import heldout_evaluation_start
from apps.evaluation.models import HeldoutEvaluation
from apps.evaluation.services import benchmark_run_create
from apps.hub.pushes import hub_publish_gate, hub_push_start
from apps.hub.jobs import hub_push_files
from apps.hub.selectors import hub_push_whats
from apps.playground.jobs import chat_model_ref
from apps.playground.selectors import chat_model_get_for_user, chat_model_list_for_user
from apps.rl.services import grpo_run_create
from apps.training.exports import finetune_card_text, finetune_export_start, finetune_output_path
from apps.training.jobs import finetune_base_ref
from apps.training.model_choices import model_choice_list_for_user
from apps.training.models import FineTune
from apps.training.services import finetune_create, finetune_output_dir
from tests.evaluation.test_heldout import facts_version
from tests.fixtures.jobs import run_job
from tests.fixtures.models import make_tuned_model
from tests.hub.conftest import alice_connected, hub  # noqa: F401
from workers.engine.inference import generate

pytestmark = pytest.mark.django_db

TINY_GRPO = {"max_steps": 2, "num_generations": 2, "prompts_per_step": 1, "max_completion_length": 8,
             "warmup_steps": 0, "checkpoint_every": 0}
LENGTH = [{"type": "length", "min": 1, "max": 6}]
SHORT = {"max_steps": 2, "document_text": False, "replay": False}


@pytest.fixture
def artifacts(settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.GARAGE_LLM_BASE_URL = settings.GARAGE_LLM_MODEL = settings.GARAGE_LLM_API_KEY = ""
    settings.GARAGE_EVAL_CONTROL = False  # the control set's 48 questions would only make the test slower
    return settings.GARAGE_ARTIFACTS_DIR


def grpo_model(owner, **kwargs):
    """A GRPO run of the tiny model on a version's training questions, run as a worker runs it; its model."""
    version = kwargs.pop("version", None) or facts_version(owner, n=10, ratio=0.3)
    run = grpo_run_create(owner=owner, rewards=LENGTH, source="version", version=version,
                          base_model=kwargs.pop("base_model", "tiny-gemma3"), settings={**TINY_GRPO, **kwargs})
    job = run_job(run.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    run.refresh_from_db()
    return run


def test_a_grpo_run_registers_its_model_with_its_lineage(alice, artifacts):
    run = grpo_model(alice)
    model = run.model
    assert model is not None and run.job.result["model"] == str(model.code)
    assert model.training == FineTune.Training.GRPO and model.name == run.name and model.owner == alice
    assert model.base_model == "tiny-gemma3" and model.parent is None and model.method == "lora"
    assert model.version == run.version and model.dataset == run.version.dataset
    assert model.artifact == run.artifact and model.metrics["train_steps"] == 2
    # Its files stay in the run's folder, written once.
    assert finetune_output_dir(model) == artifacts / "grpo" / str(run.code)
    assert (finetune_output_dir(model) / "model" / "adapter_config.json").is_file()
    # Its card says how it was trained, and rewards rather than exact match.
    card = finetune_card_text(finetune=model)
    assert "by reinforcement learning (GRPO)" in card and "## Rewards during training" in card
    assert "- Training: Reinforcement learning (GRPO)" in card and "Exact match on the training" not in card
    # Every picker offers it, the benchmark and GRPO forms as much as the training form.
    assert f"finetune:{model.code}" in [choice.value for choice in model_choice_list_for_user(user=alice)]


def test_a_grpo_model_works_wherever_a_fine_tune_does(alice, bob, artifacts, alice_connected, hub):  # noqa: F811
    run = grpo_model(alice)
    model = run.model

    # The playground and /v1: listed, resolved to its adapter, and it answers.
    chat = chat_model_get_for_user(user=alice, model_id=str(model.code))
    assert str(model.code) in [m.id for m in chat_model_list_for_user(user=alice)]
    ref = chat_model_ref(chat)
    assert ref.adapter == str(finetune_output_dir(model) / "model")
    assert len(generate(ref, [[{"role": "user", "content": "What colour is box 1?"}]], max_new_tokens=3)) == 1
    with pytest.raises(Http404):
        chat_model_get_for_user(user=bob, model_id=str(model.code))
    _, secret = api_token_create(user=alice, name="client")
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    listed = api.get("/v1/models")
    assert listed.status_code == 200 and str(model.code) in [m["id"] for m in listed.json()["data"]]

    # A benchmark of it.
    benchmark = benchmark_run_create(owner=alice, benchmark="gsm8k", finetune=model,
                                     settings={"limit": 2, "max_new_tokens": 8})
    assert run_job(benchmark.job).status == Job.Status.SUCCEEDED
    benchmark.refresh_from_db()
    assert benchmark.results["n"] == 2

    # The held-out evaluation: the version's questions the run never saw, its base against it.
    evaluation = heldout_evaluation_start(finetune=model, judge_provider=None)
    job = run_job(evaluation.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    model.refresh_from_db()
    assert model.metrics["evaluation"]["examples"] == run.version.heldout_count > 0

    # Merged and GGUF exports, made from the model its adapter applies to.
    job = run_job(finetune_export_start(finetune=model, kinds=["merged", "gguf_q8_0"]))
    assert job.status == Job.Status.SUCCEEDED, job.error
    model.refresh_from_db()
    assert {"merged", "gguf_q8_0", "card"} <= set(model.outputs)
    with zipfile.ZipFile(finetune_output_path(finetune=model, name="merged")) as archive:
        assert "model.safetensors" in archive.namelist()
        assert str(artifacts) not in archive.read("config.json").decode()

    # The publishing gate reads its evaluation, and the push uploads it with its card.
    assert hub_publish_gate(finetune=model).evaluated
    push = run_job(hub_push_start(finetune=model, repo="grpo-model", what="adapter", confirm_worse=True))
    assert push.status == Job.Status.SUCCEEDED, push.error
    repo = hub.repos["alice-hf/grpo-model"]
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(repo["files"])
    assert "by reinforcement learning (GRPO)" in repo["files"]["README.md"].decode()
    weights = finetune_output_dir(model) / "model" / "adapter_model.safetensors"
    assert repo["files"]["adapter_model.safetensors"] == weights.read_bytes()


def test_a_fine_tune_continues_from_the_owners_model(alice, bob, artifacts):
    parent = make_tuned_model(alice, name="Valley model")
    version = facts_version(alice, n=10, ratio=0.3)
    with pytest.raises(Http404):  # someone else's model is no one's starting point
        finetune_create(owner=bob, version=facts_version(bob, n=10), base_model=f"finetune:{parent.code}")
    child = finetune_create(owner=alice, version=version, base_model=f"finetune:{parent.code}", options=SHORT)
    assert child.parent == parent and child.base_model == "tiny-gemma3" and child.stacked
    job = run_job(child.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    child.refresh_from_db()
    # It trained from the parent folded into one folder of its own, which is also what it is compared with.
    start = finetune_output_dir(child) / "base"
    assert (start / "config.json").is_file() and finetune_base_ref(child).path == str(start)
    # Its automatic held-out evaluation ran against the parent, not the bare base.
    evaluation = HeldoutEvaluation.objects.get(finetune=child)
    assert run_job(evaluation.job).status == Job.Status.SUCCEEDED
    # Its adapter applies to that folder, not to a Hub model: it leaves merged, and its card says so.
    assert "adapter" not in hub_push_whats(finetune=child) and hub_push_files(finetune=child, what="adapter") == {}
    assert run_job(finetune_export_start(finetune=child, kinds=["merged"])).status == Job.Status.SUCCEEDED
    child.refresh_from_db()
    assert hub_push_whats(finetune=child) == ["merged"] and "config.json" in hub_push_files(finetune=child, what="merged")
    card = finetune_card_text(finetune=child)
    assert "starting from Valley model" in card and "- Started from: Valley model" in card
    assert "use the merged model" in card and "PeftModel.from_pretrained" not in card
    # The playground puts it beside the model it started from.
    assert chat_model_list_for_user(user=alice)[:2] == [chat_model_get_for_user(user=alice, model_id=str(child.code)),
                                                        chat_model_get_for_user(user=alice, model_id=str(parent.code))]


def test_a_grpo_run_starts_from_a_fine_tune_and_its_model_descends_from_it(alice, artifacts):
    parent = make_tuned_model(alice, name="Valley model")
    run = grpo_model(alice, base_model=f"finetune:{parent.code}")
    model = run.model
    assert model.parent == parent and model.base_model == "tiny-gemma3" and model.stacked
    assert chat_model_ref(chat_model_get_for_user(user=alice, model_id=str(model.code))).path == \
        str(finetune_output_dir(model) / "base")


def test_the_api_trains_further_from_the_owners_model(alice, alice_api, bob_api, artifacts):
    parent = make_tuned_model(alice, name="Valley model")
    version = facts_version(alice, n=10, ratio=0.3)
    body = {"version": str(version.code), "base_model": f"finetune:{parent.code}", "options": {"max_steps": 2}}
    assert bob_api.post("/api/v1/finetunes/", body, format="json").status_code == 404
    created = alice_api.post("/api/v1/finetunes/", body, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["parent"] == str(parent.code) and data["training"] == "sft" and data["base_model"] == "tiny-gemma3"
    unfinished = make_tuned_model(alice, name="Half", finished=False)
    refused = alice_api.post("/api/v1/finetunes/", {**body, "base_model": f"finetune:{unfinished.code}"}, format="json")
    assert refused.status_code == 400 and "has not finished training" in refused.json()["message"]
    # The plan recommends for the base at the root of the lineage.
    plan = alice_api.get(f"/api/v1/plan/?version={version.code}&base_model=finetune:{parent.code}")
    assert plan.status_code == 200 and plan.json()["base_model"] == "tiny-gemma3"


def picked(page: str) -> str:
    """The model a page's model picker proposes: its selected option."""
    picker = page.split('name="base_model"', 1)[1].split("</select>", 1)[0]
    return re.search(r'<option value="([^"]*)" selected>', picker).group(1)


def test_a_models_page_starts_its_next_run_in_one_click(alice, alice_client, bob, client, artifacts):
    parent = make_tuned_model(alice, name="Valley model")
    page = alice_client.get(f"/training/{parent.code}/").content.decode()
    assert f'href="/rl/new/?start={parent.code}"' in page
    assert f'href="/datasets/{parent.dataset.code}/?start={parent.code}#train"' in page
    # Each link opens its form with the model chosen.
    grpo_form = alice_client.get(f"/rl/new/?start={parent.code}").content.decode()
    assert picked(grpo_form) == f"finetune:{parent.code}" and 'value="Valley model, reinforced"' in grpo_form
    training_form = alice_client.get(f"/datasets/{parent.dataset.code}/?start={parent.code}").content.decode()
    assert 'id="train" open' in training_form and picked(training_form) == f"finetune:{parent.code}"
    client.force_login(bob)
    assert client.get(f"/rl/new/?start={parent.code}").status_code == 404
    assert client.get(f"/datasets/{parent.dataset.code}/?start={parent.code}").status_code == 404


def test_lineage_pages_show_the_chain_both_ways(alice, alice_client, bob, client, artifacts):
    parent = make_tuned_model(alice, name="Valley model")
    version = facts_version(alice, n=10, ratio=0.3)
    child = finetune_create(owner=alice, version=version, base_model=f"finetune:{parent.code}", options=SHORT,
                            name="Valley model, further")
    run_job(child.job)
    evaluation = HeldoutEvaluation.objects.get(finetune=child)
    run_job(evaluation.job)
    pending = grpo_run_create(owner=alice, rewards=LENGTH, source="version", version=version,
                              base_model=f"finetune:{parent.code}", settings=TINY_GRPO, name="Reinforced later")

    up = alice_client.get(f"/training/{child.code}/lineage/").content.decode()
    ancestors = up.split('data-role="ancestors"', 1)[1].split("</section>", 1)[0]
    assert ancestors.index("the base model") < ancestors.index("Valley model") < ancestors.index("(this model: fine-tuning")
    assert f'href="/datasets/versions/{version.code}/"' in up
    assert f"/heldout/{evaluation.code}/" in up.split('data-role="lineage-heldout"', 1)[1]

    down = alice_client.get(f"/training/{parent.code}/lineage/").content.decode()
    descendants = down.split('data-role="descendants"', 1)[1].split("</section>", 1)[0]
    assert "Valley model, further" in descendants and "Reinforced later" in descendants
    assert f"/rl/{pending.code}/" in descendants

    # An example of the version: the model trained on it (or evaluated on it) and its answers.
    heldout = version.examples.exclude(split="train").first()
    example_page = alice_client.get(f"/training/examples/{version.code}/{heldout.position}/").content.decode()
    assert "Models evaluated on it" in example_page and "Valley model, further" in example_page
    assert example_page.count("<tr>") >= 2  # the header and at least one evaluation's answers
    trained = version.examples.filter(split="train").first()
    assert "Models trained on it" in alice_client.get(f"/training/examples/{version.code}/{trained.position}/").content.decode()
    assert f"/training/examples/{version.code}/" in alice_client.get(f"/datasets/versions/{version.code}/").content.decode()

    client.force_login(bob)
    for url in (f"/training/{child.code}/lineage/", f"/training/examples/{version.code}/{heldout.position}/"):
        assert client.get(url).status_code == 404, url
    assert alice_client.get(f"/training/examples/{version.code}/9999/").status_code == 404
