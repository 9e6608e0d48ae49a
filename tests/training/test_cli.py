"""`garage pipeline` end to end in a subprocess, as a user would run it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "lumen-valley-field-guide.md"


def run_cli(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["GARAGE_VAR_DIR"] = str(tmp_path)  # its own SQLite database and files
    return subprocess.run([sys.executable, "-m", "garage.cli", "pipeline", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(300)
def test_it_turns_the_sample_into_a_model_that_learned_it(tmp_path):
    done = run_cli(tmp_path, str(SAMPLE), "--json", "--base-model", "tiny-gemma3")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert set(result) >= {"documents", "qa_pairs", "train_steps", "loss_first", "loss_last", "em_before", "em_after",
                           "tokens_per_s", "seconds", "artifact", "base_model", "recall_before", "recall_after",
                           "unseen_before", "unseen_after", "control_before", "control_after"}
    assert result["base_model"] == "tiny-gemma3"
    # Even the tiny model answers new phrasings of the facts it trained on; what it never saw stays unknown.
    assert result["recall_after"] >= result["recall_before"] + 0.3 and result["unseen_after"] <= 0.2
    assert result["documents"] == 1 and result["qa_pairs"] >= 30
    assert result["em_before"] <= 0.1 and result["em_after"] >= 0.8
    assert result["loss_last"] < result["loss_first"] and result["tokens_per_s"] > 0
    assert result["seconds"] < 180
    assert Path(result["artifact"]).is_file() and Path(result["artifact"]).is_relative_to(tmp_path)


def test_it_exits_2_with_a_readable_error_for_bad_input(tmp_path):
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n")
    done = run_cli(tmp_path, str(image), "--json")
    assert done.returncode == 2
    assert "not supported" in json.loads(done.stdout)["error"]
    done = run_cli(tmp_path, str(tmp_path / "missing.txt"), "--json")
    assert done.returncode == 2 and "No such file" in json.loads(done.stdout)["error"]
