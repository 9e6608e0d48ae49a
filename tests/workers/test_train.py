"""The training engine alone, with a recording reporter: no Django, no worker."""
import zipfile

import pytest

from workers.errors import Cancelled, ReadableError
from workers.reporting import RecordingReporter
from workers.train import TrainConfig, train

PAIRS = [{"question": f"Where does item{i} live?", "answer": f"Item{i} lives in {city}."}
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"] * 2)]


def test_it_learns_the_pairs_and_writes_an_adapter_zip(tmp_path):
    reporter = RecordingReporter()
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, max_steps=80), reporter)
    assert result["em_before"] <= 0.1 and result["em_after"] >= 0.9
    assert result["loss_last"] < result["loss_first"] / 4
    assert reporter.phases[:2] == ["loading model", "evaluating base model"] and "training" in reporter.phases
    assert [m["step"] for m in reporter.metrics] == list(range(1, 81))
    assert all(m["tokens_per_s"] > 0 and m["eta_s"] >= 0 for m in reporter.metrics)
    with zipfile.ZipFile(result["artifact"]) as archive:
        names = set(archive.namelist())
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= names


def test_it_stops_when_asked(tmp_path):
    reporter = RecordingReporter(stop_after_metrics=5)
    with pytest.raises(Cancelled):
        train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, max_steps=500, evaluate=False), reporter)
    assert 5 <= len(reporter.metrics) <= 7


def test_it_explains_bad_settings(tmp_path):
    with pytest.raises(ReadableError, match="no question-answer pairs"):
        train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=[]), RecordingReporter())
    with pytest.raises(ReadableError, match="Could not load the base model"):
        train(TrainConfig(base_model=str(tmp_path / "missing"), output_dir=str(tmp_path), pairs=PAIRS), RecordingReporter())
