"""Recommended training settings: rates from the model, length from the data, steps from epochs or a CPU budget, and
the warnings a person should see before training."""
import math

import pytest

from workers.common.catalogue import CATALOGUE, TrainingSettings
from workers.common.planner import GIB, Device
from workers.common.recommend import MIN_STEPS, TRAIN_SHARE, ModelFacts, example_tokens, model_facts_for, recommend
from workers.common.catalogue import TINY_MODEL_ID
from workers.engine.train.train import TrainConfig, planned_steps

H200 = Device("cuda", "NVIDIA H200", 140 * GIB, 7e14)
SLOW_CPU = Device("cpu", "CPU (2 cores)", 16 * GIB, 1e11)
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_it_recommends_rates_that_suit_real_models_and_keeps_the_tiny_models_own():
    for name in (SMOLLM2, "pypi/SmolLM2-135M-Instruct", "google/gemma-3-270m-it", "pypi/gemma-3-270m"):
        settings = CATALOGUE[name].recommended
        assert 2e-4 <= settings.learning_rate("lora") <= 1e-3, name
        assert 2e-5 <= settings.learning_rate("full") <= 5e-5, name
        assert settings.lora_alpha >= settings.lora_r and 0 < settings.warmup_ratio <= 0.1, name
    tiny = CATALOGUE[TINY_MODEL_ID]
    assert tiny.recommended.learning_rate("lora") == 1e-2 and tiny.test_only and "test model" in tiny.label
    assert not CATALOGUE[SMOLLM2].test_only
    advice = recommend(model=model_facts_for(SMOLLM2), method="full", token_lengths=[40] * 100, device=H200)
    assert advice.options["learning_rate"] == CATALOGUE[SMOLLM2].recommended.full_learning_rate
    assert any("Learning rate 3e-5 for full fine-tuning" in reason for reason in advice.reasons)


def test_it_takes_the_maximum_length_from_the_99th_percentile_capped_by_the_context():
    lengths = [40] * 98 + [70, 500]  # the 99th percentile is 70: the one long outlier is cut, not planned for
    advice = recommend(model=model_facts_for(SMOLLM2), token_lengths=lengths, device=H200)
    assert advice.options["max_length"] == 80  # 70 rounded up to a multiple of 16
    assert any("99% of the 100 training examples are at most ~70 tokens" in reason for reason in advice.reasons)
    tiny = recommend(model=model_facts_for(TINY_MODEL_ID), token_lengths=[600] * 50, device=H200)
    assert tiny.options["max_length"] == 512  # the tiny model's context
    assert any("longer than this model's context of 512 tokens" in warning for warning in tiny.warnings)
    # Approximate lengths: four characters a token, plus the chat template's own tokens.
    assert example_tokens(400, "chatml") > example_tokens(400, "gemma") > 100


def test_it_counts_steps_from_epochs_as_the_engine_does():
    advice = recommend(model=model_facts_for(SMOLLM2), token_lengths=[50] * 812, device=H200, chosen={"batch_size": 16})
    assert advice.steps == advice.options["max_steps"] == 153 and advice.epochs == 3
    assert "3 epochs of 812 examples at batch 16 = 153 steps." in advice.reasons
    engine = TrainConfig(base_model=SMOLLM2, output_dir="unused", pairs=[{}] * 812, batch_size=16, epochs=3)
    assert planned_steps(engine) == 153
    # A small dataset is passed over more often: facts are learned by repetition.
    small = recommend(model=model_facts_for(SMOLLM2), token_lengths=[50] * 40, device=H200)
    assert small.steps == MIN_STEPS and any(f"{MIN_STEPS} steps at least" in reason for reason in small.reasons)


def test_it_fits_the_steps_into_the_cpu_time_budget_and_says_so():
    facts = model_facts_for(SMOLLM2)
    advice = recommend(model=facts, token_lengths=[60] * 500, device=SLOW_CPU, cpu_budget_minutes=15)
    step = advice.seconds_per_step
    assert step > 1  # a 135M model on a slow CPU
    assert advice.budget_limited and advice.steps == math.floor(15 * 60 * TRAIN_SHARE / step)
    assert advice.steps * step <= 15 * 60 * TRAIN_SHARE
    reason = next(reason for reason in advice.reasons if "budget" in reason)
    assert f"On this CPU a step takes ~{step:.1f} s: {advice.steps} steps fit the 15-minute budget" in reason
    assert "epochs of 500 examples" in reason
    # A longer budget lets the full 3 epochs run; a GPU has no budget at all.
    roomy = recommend(model=facts, token_lengths=[60] * 500, device=SLOW_CPU, cpu_budget_minutes=600)
    assert not roomy.budget_limited and roomy.steps == math.ceil(3 * math.ceil(500 / 8))
    gpu = recommend(model=facts, token_lengths=[60] * 500, device=H200, cpu_budget_minutes=15)
    assert not gpu.budget_limited and gpu.steps == roomy.steps
    assert advice.train_seconds == pytest.approx(advice.steps * step, rel=0.01)
    assert "GiB of 16 GiB" in advice.summary() and "per step" in advice.summary() and "in all" in advice.summary()


def test_it_keeps_what_the_person_chose_and_warns_when_it_exceeds_the_budget():
    advice = recommend(model=model_facts_for(SMOLLM2), token_lengths=[60] * 500, device=SLOW_CPU, cpu_budget_minutes=15,
                       chosen={"max_steps": 2000, "learning_rate": 1e-4, "max_length": 256, "batch_size": 4})
    assert advice.options | {"max_steps": 2000, "learning_rate": 1e-4, "max_length": 256, "batch_size": 4} == advice.options
    assert not advice.budget_limited
    assert any("over the 15-minute budget" in warning for warning in advice.warnings)
    assert "2000 steps at batch 4 = 16 epochs of 500 examples." in advice.reasons
    by_epochs = recommend(model=model_facts_for(SMOLLM2), token_lengths=[60] * 100, device=H200, chosen={"epochs": 2})
    assert by_epochs.steps == 2 * math.ceil(100 / 8)


def test_it_warns_when_a_dataset_is_too_small_to_learn_from():
    advice = recommend(model=model_facts_for(SMOLLM2), token_lengths=[50] * 6, device=H200)
    assert "Only 6 pairs: too few to learn from; add documents or generate more pairs." in advice.warnings
    assert not any("too few" in w for w in recommend(model=model_facts_for(SMOLLM2), token_lengths=[50] * 200,
                                                       device=H200).warnings)
    empty = recommend(model=model_facts_for(SMOLLM2), token_lengths=[], device=H200)
    assert any("no training examples yet" in warning for warning in empty.warnings)
    # Before any pairs exist (documents not read yet) there is nothing to warn about, and the steps are provisional.
    none_yet = recommend(model=model_facts_for(SMOLLM2), device=H200)
    assert none_yet.warnings == [] and none_yet.epochs is None and none_yet.options["max_length"] == 128


def test_it_warns_about_the_test_model_a_run_that_does_not_fit_and_qlora_on_a_cpu():
    tiny = recommend(model=model_facts_for(TINY_MODEL_ID), token_lengths=[30] * 100, device=SLOW_CPU)
    assert any("tiny test model" in warning for warning in tiny.warnings) and tiny.options["learning_rate"] == 1e-2
    small_card = Device("cuda", "4 GB card", 4 * GIB, 5e13)
    big = recommend(model=model_facts_for("google/gemma-3-4b-it"), method="full", token_lengths=[400] * 100,
                    device=small_card)
    assert not big.plan.fits and any(w.startswith("This run will not fit") for w in big.warnings)
    qlora = recommend(model=model_facts_for(SMOLLM2), method="qlora", token_lengths=[30] * 100, device=SLOW_CPU)
    assert any("QLoRA needs an NVIDIA GPU" in warning for warning in qlora.warnings)


def test_it_reads_a_model_folder_and_gives_general_settings_to_unknown_hub_ids(tmp_path):
    from workers.engine.train.tiny_model import build_tiny_gemma3

    folder = build_tiny_gemma3(tmp_path / "mine", ["a b c"], hidden=64)
    facts = model_facts_for(str(folder))
    assert facts.architecture.hidden_size == 64 and facts.context == 512 and not facts.in_catalogue
    assert facts.chat_template == "gemma"
    unknown = model_facts_for("someone/their-model")
    assert unknown.architecture is None and unknown.settings == TrainingSettings(2e-4, 2e-4, 2e-5)
    advice = recommend(model=unknown, token_lengths=[30] * 100, device=H200)
    assert advice.plan is None and "No estimate" in advice.summary()
    assert any("outside the catalogue" in reason for reason in advice.reasons)


def test_it_describes_the_model_it_recommends_for():
    facts = ModelFacts("x", "X", TrainingSettings(1e-3, 1e-3, 1e-4), None, None, None)
    advice = recommend(model=facts, token_lengths=[30] * 100)
    assert advice.options["learning_rate"] == 1e-3 and advice.plan is None and advice.device == {}


def test_it_counts_the_documents_passages_as_the_engine_cuts_them():
    # Two chunks of 1,000 characters; a maximum length of 96 tokens cuts passages into pieces of 288 characters.
    advice = recommend(model=model_facts_for(SMOLLM2), token_lengths=[90] * 100, passage_characters=[1000, 1000],
                       device=H200)
    assert advice.options["max_length"] == 96 and advice.passages == 2 * math.ceil(1000 / 288) == 8
    assert advice.steps == math.ceil(3 * math.ceil(108 / 8))
    assert f"3 epochs of 100 pairs and 8 passages of the documents' text at batch 8 = {advice.steps} steps." in \
        advice.reasons
