"""The GRPO engine on CPU with the tiny model: a short warm-up, rising rewards, live metrics and samples, cancel and
resume from a checkpoint, a judge reward through the local chat server, and settings refused up front."""
import json
import random
import zipfile
from pathlib import Path

import pytest

from tests.fakes.chat_server import Reply
from workers.common.errors import Cancelled, ReadableError
from workers.common.llm import ChatClient
from workers.common.rl import GRPOTrainConfig
from workers.engine.rl.grpo import grpo_train, validate, warmup_pairs
from workers.engine.reporting import RecordingReporter
from workers.engine.train.train import latest_checkpoint

COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
ANIMALS = ["cat", "dog", "owl", "fox"]
CITIES = ["Paris", "Rome", "Oslo", "Lima"]


def facts(n=64, seed=0):
    """Arbitrary facts a random model cannot guess: after a short warm-up the model answers in their shape with
    colours drawn at random, so the completions of a group differ and GRPO has something to learn from."""
    rng = random.Random(seed)
    return [{"prompt": f"Where does item{i} live?",
             "answer": f"The {rng.choice(COLORS)} {rng.choice(ANIMALS)} lives in {rng.choice(CITIES)}."} for i in range(n)]


def config(tmp_path, **overrides):
    values = dict(base_model="tiny-gemma3", output_dir=str(tmp_path / "run"), prompts=facts(),
                  rewards=[{"type": "contains", "target": "blue", "name": "blue"},
                           {"type": "length", "min": 3, "max": 12, "weight": 0.1}],
                  num_generations=8, prompts_per_step=2, max_completion_length=16, learning_rate=1e-2, beta=0.04,
                  max_steps=24, warmup_steps=30, warmup_learning_rate=2e-2, warmup_template="{answer}", sample_every=8)
    values.update(overrides)
    return GRPOTrainConfig(**values)


@pytest.mark.timeout(120)
def test_it_raises_the_mean_reward_of_a_rule_based_reward_after_a_short_warm_up(tmp_path):
    reporter = RecordingReporter()
    result = grpo_train(config(tmp_path, save_merged=True), reporter)

    steps = [m for m in reporter.metrics if "reward" in m]
    assert [m["step"] for m in steps] == list(range(1, 25)) and result["train_steps"] == 24
    # The model learns to say "blue": rare after the warm-up, nearly always at the end.
    assert steps[0]["reward/blue"] < 0.5 and result["rewards"]["blue"]["last"] >= 0.9
    assert result["reward_last"] > result["reward_first"] + 0.2
    first = steps[0]
    for key in ("reward", "reward_std", "reward/blue", "reward_std/blue", "reward/length", "kl", "completion_length",
                "loss", "learning_rate"):
        assert key in first, key
    # A rolling sample of completions with every function's score at step 1 and every 8 steps.
    sampled = [m["step"] for m in steps if "samples" in m]
    assert sampled == [1, 8, 16, 24]
    sample = steps[-1]["samples"][0]
    assert set(sample["scores"]) == {"blue", "length"} and sample["prompt"].startswith("Where does item")
    # The warm-up reports under its own names, and progress runs through both stages to the end.
    warmup = [m for m in reporter.metrics if "warmup_loss" in m]
    assert warmup and "loss" not in warmup[0] and result["warmup"]["steps"] == 30
    assert "warm-up: training" in reporter.phases and "training" in reporter.phases
    assert max(reporter.progress_values[:5]) <= 0.2 and reporter.progress_values[-1] == 1.0
    # The adapter, its zip, and the merged model (the adapter folded into the warmed-up model).
    out = Path(result["model_dir"])
    assert (out / "adapter_config.json").is_file() and "adapter_config.json" in zipfile.ZipFile(result["artifact"]).namelist()
    assert (Path(result["merged"]) / "config.json").is_file() and result["policy_base"].endswith("warmup/merged")
    assert result["judge"] is None and result["config"]["rewards"][0]["target"] == "blue"


@pytest.mark.timeout(120)
def test_it_stops_when_cancelled_and_resumes_from_its_checkpoint(tmp_path):
    settings = dict(warmup_steps=0, max_steps=6, checkpoint_every=2, num_generations=4, max_completion_length=8)
    with pytest.raises(Cancelled):
        grpo_train(config(tmp_path, **settings), RecordingReporter(stop_after_metrics=3))
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert checkpoint is not None and not (tmp_path / "run" / "model").exists()
    stopped_at = int(checkpoint.name.split("-")[-1])
    assert 2 <= stopped_at < 6

    reporter = RecordingReporter()
    result = grpo_train(config(tmp_path, resume=True, **settings), reporter)
    assert result["resumed_from_step"] == stopped_at and any("Resuming from" in line for line in reporter.lines)
    assert [m["step"] for m in reporter.metrics if "reward" in m] == list(range(stopped_at + 1, 7))
    assert Path(result["artifact"]).is_file()


@pytest.mark.timeout(120)
def test_it_trains_with_an_llm_judge_reward_and_counts_its_calls(tmp_path, chat_server):
    chat_server.responder = lambda request: Reply.text(json.dumps({"score": 9 if "blue" in request.text.split("Response to grade:")[-1] else 1}))
    chat_server.script(Reply.status(429, headers={"Retry-After": "0"}), Reply.text("I cannot grade this."))
    client = ChatClient(chat_server.url, model=chat_server.model, backoff_base=0.01, backoff_max=0.02)
    calls, reporter = [], RecordingReporter()
    result = grpo_train(config(tmp_path, warmup_steps=10, max_steps=2, rewards=[
        {"type": "judge", "rubric": "Does it mention the colour blue?", "provider": "mine", "on_failure": "zero"}]),
        reporter, judge_client=lambda provider: client if provider == "mine" else None,
        on_judge_call=lambda result, spec: calls.append(result))
    judge = result["judge"]
    assert judge["judge_calls"] == len(calls) > 0 and judge["judge_attempts"] == judge["judge_calls"] + 1
    assert judge["judge_failures"] == judge["judge_malformed"] == 1
    assert judge["judge_calls"] + judge["judge_cache_hits"] == 2 * 16  # every completion judged or served from cache
    assert "Does it mention the colour blue?" in chat_server.chat_requests[0].text
    assert any(line.startswith("Judge: 1 judgements failed by step 1; the last: unreadable judgement: 'I cannot grade")
               for line in reporter.lines)


@pytest.mark.parametrize("overrides, message", [
    ({"prompts": []}, "no prompts"),
    ({"prompts": [{"prompt": "  "}]}, "Prompt 1 has no text"),
    ({"rewards": [{"type": "nonsense"}]}, "unknown type"),
    ({"rewards": []}, "at least one reward"),
    ({"num_generations": 1}, "Num generations must be between 2"),
    ({"beta": -1}, "Beta must be between"),
    ({"method": "qlora"}, "QLoRA needs an NVIDIA GPU"),
    ({"method": "dpo"}, "Unknown training method"),
    ({"warmup_template": "no placeholder"}, "must contain {answer}"),
])
def test_it_refuses_settings_that_cannot_work_before_loading_a_model(tmp_path, overrides, message):
    with pytest.raises(ReadableError) as error:
        validate(config(tmp_path, **overrides))
    assert message.lower() in str(error.value).lower()


def test_it_needs_answers_for_a_warm_up(tmp_path):
    with pytest.raises(ReadableError, match="reference answers"):
        grpo_train(config(tmp_path, prompts=[{"prompt": "Where?"}]), RecordingReporter())


def test_it_writes_warm_up_examples_in_the_template():
    cfg = GRPOTrainConfig(base_model="tiny-gemma3", output_dir="x", system_prompt="Use tags.", prompts=[
        {"prompt": "2+2?", "answer": "4", "solution": "Two and two <<2+2=4>>make four.\n#### 4"}, {"prompt": "No answer"}])
    assert warmup_pairs(cfg) == [{"question": "2+2?", "system": "Use tags.",
                                  "answer": "<reasoning>\nTwo and two make four.\n</reasoning>\n<answer>\n4\n</answer>"}]


@pytest.mark.timeout(60)
def test_it_leaves_out_prompts_over_the_maximum_prompt_length(tmp_path):
    prompts = facts(8) + [{"prompt": "Where does " + "the very long item " * 40 + "live?", "answer": "far"}]
    reporter = RecordingReporter()
    result = grpo_train(config(tmp_path, prompts=prompts, warmup_steps=0, max_steps=1, max_prompt_length=40), reporter)
    assert result["prompts_left_out"] == 1 and result["prompts"] == 8
    assert any("Left out 1 prompts longer than 40 tokens" in line for line in reporter.lines)
    with pytest.raises(ReadableError, match="Every prompt is longer"):
        grpo_train(config(tmp_path / "b", prompts=prompts[-1:], warmup_steps=0, max_steps=1, max_prompt_length=40),
                   RecordingReporter())
