"""The training engine alone, with a recording reporter: no Django, no worker."""
import zipfile

import pytest

from workers.common.errors import Cancelled, ReadableError
from workers.engine.reporting import RecordingReporter
from workers.engine.train.train import TrainConfig, train

PAIRS = [{"question": f"Where does item{i} live?", "answer": f"Item{i} lives in {city}."}
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"] * 2)]


def test_it_learns_the_pairs_and_writes_an_adapter_zip(tmp_path):
    reporter = RecordingReporter()
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, max_steps=80), reporter)
    assert result["em_before"] <= 0.1 and result["em_after"] >= 0.9
    assert result["loss_last"] < result["loss_first"] / 4
    assert reporter.phases[:2] == ["loading model", "evaluating base model"] and "training" in reporter.phases
    assert [m["step"] for m in reporter.metrics] == list(range(1, 81))
    assert all(m["tokens_per_s"] > 0 and m["eta_s"] >= 0 for m in reporter.metrics[1:])
    assert result["backend"] == "trl" and result["steady_tokens_per_s"] > 0
    with zipfile.ZipFile(result["artifact"]) as archive:
        names = set(archive.namelist())
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= names


def test_it_stops_when_asked(tmp_path):
    reporter = RecordingReporter(stop_after_metrics=5)
    with pytest.raises(Cancelled):
        train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, max_steps=500, evaluate=False), reporter)
    assert 5 <= len(reporter.metrics) <= 7


def test_it_fine_tunes_all_weights_and_writes_a_model_zip(tmp_path):
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, method="full",
                               max_steps=60, learning_rate=3e-3), RecordingReporter())
    assert result["em_after"] >= 0.9 and result["loss_last"] < result["loss_first"] / 4
    with zipfile.ZipFile(result["artifact"]) as archive:
        assert "model.safetensors" in archive.namelist() and "adapter_config.json" not in archive.namelist()


def test_it_resumes_from_the_last_checkpoint_at_the_right_step_with_the_same_data_order(tmp_path):
    def config(out, **kwargs):
        return TrainConfig(base_model="tiny-gemma3", output_dir=str(out), pairs=PAIRS, max_steps=12, batch_size=4,
                           checkpoint_every=4, evaluate=False, **kwargs)

    straight = RecordingReporter()
    train(config(tmp_path / "straight"), straight)
    with pytest.raises(Cancelled):  # stopped after step 6: the last checkpoint is step 4
        train(config(tmp_path / "resumed"), RecordingReporter(stop_after_metrics=6))
    resumed = RecordingReporter()
    result = train(config(tmp_path / "resumed", resume=True), resumed)
    assert result["resumed_from_step"] == 4 and result["train_steps"] == 12
    assert [m["step"] for m in resumed.metrics] == list(range(5, 13))
    # Same batches in the same order from the same weights: the losses match the uninterrupted run.
    expected = {m["step"]: m["loss"] for m in straight.metrics}
    assert all(m["loss"] == pytest.approx(expected[m["step"]], rel=1e-4) for m in resumed.metrics)


def test_it_turns_epochs_into_whole_passes_over_the_data(tmp_path):
    reporter = RecordingReporter()
    # 16 pairs in batches of 4: 4 steps an epoch, so 2.5 epochs take 10 steps whatever max_steps says.
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, batch_size=4, epochs=2.5,
                               max_steps=999, evaluate=False), reporter)
    assert result["train_steps"] == 10 and reporter.metrics[-1]["step"] == 10
    assert reporter.metrics[-1]["epoch"] == pytest.approx(2.5)


@pytest.mark.parametrize("changes,message", [
    ({"pairs": []}, "no question-answer pairs"),
    ({"lora_r": 0}, "rank must be at least 1"),
    ({"learning_rate": 0}, "learning rate must be greater than zero"),
    ({"method": "qlora"}, "QLoRA needs an NVIDIA GPU"),
    ({"method": "dpo"}, "Unknown training method"),
    ({"max_length": 4096}, "exceeds this model's limit of 512"),
    ({"base_model": "some-org/unknown-model"}, "not a local folder, and this worker is offline"),
])
def test_it_refuses_bad_settings_before_training(tmp_path, monkeypatch, changes, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a worker without network
    reporter = RecordingReporter()
    settings = {"base_model": "tiny-gemma3", "output_dir": str(tmp_path), "pairs": PAIRS, **changes}
    with pytest.raises(ReadableError, match=message):
        train(TrainConfig(**settings), reporter)
    assert reporter.metrics == []


def test_it_puts_the_loss_on_the_answer_only_with_the_models_chat_template(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from workers.engine.train.tiny_model import build_tiny_gemma3
    from workers.engine.train.train import prompt_completion_dataset

    folder = build_tiny_gemma3(tmp_path / "base", [f"{p['question']} {p['answer']}" for p in PAIRS])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(folder), processing_class=tokenizer,
                         train_dataset=prompt_completion_dataset(PAIRS[:2]),
                         args=SFTConfig(output_dir=str(tmp_path / "out"), completion_only_loss=True, report_to=[],
                                        use_cpu=True, bf16=False))
    row = trainer.train_dataset[0]
    trained = [label for label in row["labels"] if label != -100]  # -100: no loss on that token
    assert tokenizer.decode(trained).strip() == "Item0 lives in Paris.<end_of_turn>"
    assert tokenizer.decode(row["input_ids"]).startswith("<bos><start_of_turn>user\nWhere does item0 live?")


def test_it_packs_short_examples_and_still_learns(tmp_path):
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, max_steps=60,
                               packing=True, batch_size=4, max_length=96), RecordingReporter())
    assert result["config"]["packing"] is True
    assert result["loss_last"] < result["loss_first"] / 3 and result["em_after"] >= 0.5


def test_it_measures_the_held_out_loss_during_and_after_training(tmp_path):
    held_out = [{"question": f"Where does item{i} live?", "answer": f"Item{i} lives in Paris."} for i in (20, 21)]
    reporter = RecordingReporter()
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, eval_pairs=held_out,
                               eval_every=5, max_steps=10, evaluate=False), reporter)
    assert [e["step"] for e in result["eval_losses"]] == [5, 10]
    assert result["eval_loss"] == pytest.approx(result["eval_losses"][-1]["eval_loss"], rel=1e-3)
    assert [m["step"] for m in reporter.metrics if "eval_loss" in m] == [5, 10]
    assert result["eval_losses"][-1]["eval_loss"] < result["eval_losses"][0]["eval_loss"] * 1.5
    assert "eval_pairs" not in result["config"]


def test_it_measures_exact_match_on_a_bounded_sample_and_shows_that_progress(tmp_path):
    pairs = [{"question": f"Where does thing{i} live?", "answer": f"Thing{i} lives in {city}."}
             for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima"] * 10)]

    class Progress(RecordingReporter):
        def __init__(self):
            super().__init__()
            self.messages = []

        def progress(self, fraction, message=""):
            super().progress(fraction, message)
            self.messages.append((round(fraction, 4), message))

    reporter = Progress()
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=pairs, max_steps=6,
                               em_sample=8, batch_size=8), reporter)
    assert result["em_before"] is not None and result["em_after"] is not None
    assert any("a sample of 8 of the 40 training questions" in line for line in reporter.lines)
    answered = [(f, m) for f, m in reporter.messages if m.startswith("Exact match:")]
    # Before training the bar stays at 0; the steps fill 95% of it and the measuring after them the rest.
    assert answered[0] == (0.0, "Exact match: 8 of 8 questions answered") and answered[-1] == (1.0, "Exact match: 8 of 8 questions answered")
    steps = [f for f, m in reporter.messages if m.startswith("Step ")]
    assert steps[-1] == 0.95 and max(steps) == 0.95


def test_it_trains_on_the_documents_passages_beside_the_pairs(tmp_path):
    from workers.engine.train.train import PASSAGE_PROMPT, passage_pairs, planned_steps

    text = ("The lake was formed by a glacier. Dr. Smith mapped it in 1901. Its water is cold all year. "
            "Trout live in its northern bay.")
    pieces = passage_pairs([text, "A single sentence has nothing to continue."], max_chars=100)
    assert pieces == [
        {"question": PASSAGE_PROMPT + "The lake was formed by a glacier.",
         "answer": "Dr. Smith mapped it in 1901. Its water is cold all year."},
        {"question": PASSAGE_PROMPT + "Its water is cold all year.", "answer": "Trout live in its northern bay."}]
    config = TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, passages=[text] * 8,
                         epochs=1, batch_size=8, max_length=64)
    assert planned_steps(config) == 3  # 16 pairs and 8 passage examples (each short enough for one), 8 a step
    reporter = RecordingReporter()
    result = train(config, reporter)
    assert result["train_steps"] == 3 and result["examples"] == 16


def test_it_replays_the_base_models_own_answers_to_general_questions(tmp_path):
    import json

    from workers.engine.evaluate.heldout import load_control_set
    from workers.engine.train.train import load_replay_prompts

    prompts = load_replay_prompts()
    control = {c["question"] for c in load_control_set()}
    assert len(prompts) >= 40 and not set(prompts) & control  # forgetting is measured on questions never replayed
    reporter = RecordingReporter()
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, max_steps=3,
                               replay_prompts=prompts[:6], evaluate=False), reporter)
    replayed = json.loads((tmp_path / "replay.json").read_text())
    assert result["replayed"] == len(replayed) and 0 < len(replayed) <= 6
    assert {r["question"] for r in replayed} <= set(prompts[:6]) and all(r["answer"] for r in replayed)
