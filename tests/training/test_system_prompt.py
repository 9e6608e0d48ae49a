"""A fine-tune's system prompt (typed, or one of the owner's saved prompts): checked, given to every example without
one of its own in training and in the held-out evaluation, shown on the model's page and card."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.core.models import Job
from apps.core.services import job_finish
from apps.datasets.models import QAPair
from apps.datasets.services import dataset_version_freeze
from apps.evaluation.heldout.jobs import heldout_evaluation_run
from apps.evaluation.models import HeldoutEvaluation
from apps.prompts.services import saved_prompt_create
from apps.training import jobs as training_jobs
from apps.training.exports import finetune_card_text
from apps.training.models import FineTune
from apps.training.jobs import finetune_run
from apps.training.services import finetune_create, finetune_options, finetune_system_prompt
from tests.datasets.curation_helpers import dataset_with_pairs
from tests.evaluation.test_heldout import facts_dataset
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db

ALICE_TEXT = "You answer questions about boxes in one sentence."
BOB_TEXT = "Bob's secret prompt: speak like a pirate."


@pytest.fixture
def prompts(alice, bob):
    return (saved_prompt_create(owner=alice, name="Box style", text=ALICE_TEXT),
            saved_prompt_create(owner=bob, name="Pirate", text=BOB_TEXT))


@pytest.fixture
def artifacts(settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.GARAGE_LLM_BASE_URL = settings.GARAGE_LLM_MODEL = settings.GARAGE_LLM_API_KEY = ""
    settings.GARAGE_EVAL_CONTROL = False  # the questions asked below are the version's own
    return settings.GARAGE_ARTIFACTS_DIR


# ------------------------------------------------------------------------------------------------ the option

def test_it_checks_the_system_prompt_option():
    assert finetune_options({})["system_prompt"] == ""
    assert finetune_options({"system_prompt": "  Be brief.\r\n "})["system_prompt"] == "Be brief."
    for bad, message in [("x" * 4001, "longer than 4000"), (42, "must be text")]:
        with pytest.raises(ValidationError, match=message):
            finetune_options({"system_prompt": bad})


@pytest.mark.parametrize("raw, message", [
    ({"max_step": 5}, "Unknown setting 'max_step'. Allowed: max_steps, learning_rate"),
    ({"csrfmiddlewaretoken": "x"}, "Unknown setting 'csrfmiddlewaretoken'"),
    ({"packing": "maybe"}, "Packing must be on or off (true/false, yes/no, on/off or 1/0), not 'maybe'."),
    ({"replay": 2}, "Replay must be on or off"),
    ({"learning_rate": 2}, "Learning rate must be between 1e-07 and 1.0."),
    ({"max_steps": 2.5}, "Max steps must be a whole number."),
    ({"backend": "magic"}, "Unknown backend 'magic'. Choose one of: auto, unsloth, trl."),
])
def test_it_refuses_unknown_options_and_bad_switches_readably(raw, message):
    with pytest.raises(ValidationError) as caught:
        finetune_options(raw)
    assert message in caught.value.messages[0]


def test_it_reads_every_spelling_of_a_switch_and_takes_the_backend_forms_carry():
    switches = {"packing": True, "document_text": False, "replay": False, "train_on_responses_only": False}
    options = finetune_options({"packing": "ON", "document_text": "no", "replay": 0, "train_on_responses_only": "False"})
    assert options == {**finetune_options({}), **switches}
    assert "backend" not in finetune_options({"backend": "trl"})  # finetune_create stores the one it chose


def test_it_falls_back_to_the_finetunes_prompt_only_without_the_examples_own():
    finetune = FineTune(config={"system_prompt": "Fine-tune prompt."})
    assert finetune_system_prompt(finetune, "") == "Fine-tune prompt."
    assert finetune_system_prompt(finetune, "Own prompt.") == "Own prompt."
    assert finetune_system_prompt(FineTune(config={}), "") == ""  # fine-tunes made before the option


# ------------------------------------------------------------------------------------------------ API

def test_it_takes_a_typed_or_saved_system_prompt_in_the_api(alice_api, alice, prompts):
    alice_prompt, _ = prompts
    dataset = dataset_with_pairs(alice)
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code),
                                                     "options": {"system_prompt": "Be brief."}}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["config"]["system_prompt"] == "Be brief."
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code),
                                                     "options": {"saved_prompt": str(alice_prompt.code)}}, format="json")
    assert response.status_code == 201, response.content
    assert FineTune.objects.get(code=response.json()["code"]).config["system_prompt"] == ALICE_TEXT
    assert "saved_prompt" not in response.json()["config"]


def test_it_refuses_someone_elses_saved_prompt_and_bad_ones_in_the_api(alice_api, bob_api, alice, bob, prompts):
    alice_prompt, bob_prompt = prompts
    dataset = dataset_with_pairs(alice)
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code),
                                                     "options": {"saved_prompt": str(bob_prompt.code)}}, format="json")
    assert response.status_code == 404 and BOB_TEXT not in response.content.decode()
    bob_dataset = dataset_with_pairs(bob, name="Bob's valley")
    response = bob_api.post("/api/v1/finetunes/", {"dataset": str(bob_dataset.code),
                                                   "options": {"saved_prompt": str(alice_prompt.code)}}, format="json")
    assert response.status_code == 404 and ALICE_TEXT not in response.content.decode()
    for options in [{"saved_prompt": "nonsense"}, {"system_prompt": "x" * 4001},
                    {"saved_prompt": str(alice_prompt.code), "system_prompt": "Something else."}]:
        response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code), "options": options},
                                  format="json")
        assert response.status_code == 400, (options, response.content)
    assert not FineTune.objects.exists()


# ------------------------------------------------------------------------------------------------ the training form

def test_it_offers_only_the_owners_saved_prompts_in_the_training_forms(alice_client, alice, prompts):
    alice_prompt, bob_prompt = prompts
    dataset = dataset_with_pairs(alice)
    version = dataset_version_freeze(dataset=dataset)
    for url in [reverse("datasets:detail", args=[dataset.code]), reverse("datasets:version", args=[version.code])]:
        page = alice_client.get(url).content.decode()
        assert f'value="{alice_prompt.code}"' in page and "Box style" in page and 'name="system_prompt"' in page
        assert str(bob_prompt.code) not in page and "Pirate" not in page


def test_it_starts_a_finetune_with_a_saved_prompt_from_the_form(alice_client, alice, prompts):
    alice_prompt, bob_prompt = prompts
    dataset = dataset_with_pairs(alice)
    form = {"base_model": "tiny-gemma3", "method": "lora", "backend": "auto", "max_steps": 3, "learning_rate": 0.01,
            "batch_size": 2, "max_length": 64}
    url = reverse("datasets:train", args=[dataset.code])
    response = alice_client.post(url, {**form, "saved_prompt": str(bob_prompt.code)})
    assert response.status_code == 404 and BOB_TEXT not in response.content.decode()
    assert not FineTune.objects.exists()
    response = alice_client.post(url, {**form, "saved_prompt": str(alice_prompt.code)})
    finetune = FineTune.objects.get()
    assert response.status_code == 302 and finetune.config["system_prompt"] == ALICE_TEXT
    response = alice_client.post(url, {**form, "system_prompt": "Typed prompt."})
    assert FineTune.objects.latest("created_at").config["system_prompt"] == "Typed prompt."


# ------------------------------------------------------------------------------------------------ training and evaluation

def test_it_trains_and_evaluates_with_the_system_prompt(alice, alice_client, artifacts, monkeypatch):
    """The real tiny-model engine, its config recorded on the way in; then the held-out questions as asked."""
    seen = []
    real_train = training_jobs.train

    def recording_train(config, reporter):
        seen.append(config)
        return real_train(config, reporter)

    monkeypatch.setattr(training_jobs, "train", recording_train)
    dataset = facts_dataset(alice, n=10)
    QAPair.objects.filter(dataset=dataset, question="What colour is box 0?").update(system="Own prompt.")
    version = dataset_version_freeze(dataset=dataset, heldout_ratio=0.2)
    finetune = finetune_create(owner=alice, base_model="tiny-gemma3", version=version, options={"max_steps": 2, "system_prompt": ALICE_TEXT})
    finetune_run(finetune=finetune, reporter=RecordingReporter())
    job_finish(job=finetune.job, status=Job.Status.SUCCEEDED, result={"finetune": str(finetune.code)})

    config = seen[0]
    assert not hasattr(config, "system_prompt")
    pairs = config.pairs + config.eval_pairs
    assert len(pairs) == 10 and len(config.eval_pairs) == 2
    assert {p["system"] for p in pairs if p["question"] != "What colour is box 0?"} == {ALICE_TEXT}
    assert [p["system"] for p in pairs if p["question"] == "What colour is box 0?"] == ["Own prompt."]

    evaluation = HeldoutEvaluation.objects.get(finetune=finetune)
    asked = []

    def answer(conversations, **kwargs):
        asked.extend(conversations)
        return ["" for _ in conversations]

    heldout_evaluation_run(evaluation=evaluation, reporter=RecordingReporter(), answer_base=answer, answer_tuned=answer)
    heldout = {p["question"]: p["system"] for p in config.eval_pairs}
    assert len(asked) == 4  # two questions, each to the base and the tuned model
    for conversation in asked:
        question = conversation[-1]["content"]
        assert conversation[0] == {"role": "system", "content": heldout[question]}
    assert {item.system for item in evaluation.items.all()} == set(heldout.values())

    finetune.refresh_from_db()
    page = alice_client.get(reverse("training:detail", args=[finetune.code])).content.decode()
    assert 'data-role="system-prompt"' in page and ALICE_TEXT in page
    card = finetune_card_text(finetune=finetune)
    assert "## System prompt" in card and ALICE_TEXT in card


def test_it_trains_without_a_system_prompt_as_before(alice, artifacts, monkeypatch):
    seen = []
    real_train = training_jobs.train
    monkeypatch.setattr(training_jobs, "train", lambda config, reporter: seen.append(config) or real_train(config, reporter))
    dataset = facts_dataset(alice, n=6)
    finetune = finetune_create(owner=alice, base_model="tiny-gemma3", version=dataset_version_freeze(dataset=dataset), options={"max_steps": 1})
    finetune_run(finetune=finetune, reporter=RecordingReporter())
    assert {p["system"] for p in seen[0].pairs} == {""}
    assert "## System prompt" not in finetune_card_text(finetune=finetune)
