"""`garage eval gsm8k --predictions FILE`: the real console script in a subprocess, and call_command."""
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]
GARAGE = Path(sys.executable).parent / "garage"

PREDICTIONS = [
    {"completion": "Janet sells 16 - 3 - 4 = 9 eggs and makes 9 * 2 = $18.\n#### 18",
     "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18"},
    {"completion": "It takes 2 + 1 = 3 bolts.", "answer": "3"},
    {"completion": "The profit is $70,000.\nThe answer is 70,000.", "answer": "#### 70000"},
    {"completion": "I think the answer is \\boxed{540}.", "answer": 504},
    {"completion": "I don't know.", "answer": "20"},
]


def write(tmp_path, rows, name="predictions.jsonl"):
    path = tmp_path / name
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def garage(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["GARAGE_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run([str(GARAGE), "eval", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_it_grades_predictions_in_a_subprocess(tmp_path):
    path = write(tmp_path, PREDICTIONS)
    done = garage(tmp_path, "gsm8k", "--predictions", str(path), "--json", "--per-item", str(tmp_path / "items.jsonl"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON object
    assert result["n"] == 5 and result["correct"] == 3
    assert result["accuracy"] == pytest.approx(0.6) and result["format_rate"] == pytest.approx(0.6)
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert [i["correct"] for i in items] == [True, True, True, False, False]
    assert [i["extracted"] for i in items] == ["18", "3", "70000", "540", None]
    assert [i["formatted"] for i in items] == [True, False, True, True, False]


def test_it_prints_a_readable_summary_without_json(tmp_path):
    done = garage(tmp_path, "gsm8k", "--predictions", str(write(tmp_path, PREDICTIONS)))
    assert done.returncode == 0, done.stderr
    assert "3 of 5 correct (accuracy 60.0%)" in done.stdout and "Format: 3 of 5" in done.stdout


@pytest.mark.parametrize("lines,message", [
    (None, "No such file"),
    ([], "is empty"),
    (["", "   "], "is empty"),
    ([PREDICTIONS[0], "{not json"], "Line 2 of predictions.jsonl is not valid JSON"),
    ([PREDICTIONS[0], PREDICTIONS[1], {"completion": "x"}], "Line 3 of predictions.jsonl has no 'answer' field"),
    ([{"answer": "1"}], "Line 1 of predictions.jsonl has no 'completion' field"),
    (["[1, 2]"], "Line 1 of predictions.jsonl is not a JSON object"),
    ([{"completion": 5, "answer": "5"}], "'completion' must be text"),
])
def test_it_exits_2_with_a_readable_message_for_bad_input(tmp_path, lines, message):
    path = tmp_path / "predictions.jsonl" if lines is None else write(tmp_path, lines)
    done = garage(tmp_path, "gsm8k", "--predictions", str(path), "--json")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr and done.stdout == ""


def test_it_exits_2_for_usage_errors(tmp_path):
    assert garage(tmp_path, "gsm8k").returncode == 2  # --predictions is required
    assert garage(tmp_path, "mmlu", "--predictions", "x").returncode == 2
    done = garage(tmp_path, "gsm8k", "--predictions", str(write(tmp_path, PREDICTIONS)), "--per-item",
                  str(tmp_path / "no-such-folder" / "out.jsonl"))
    assert done.returncode == 2 and "Could not write" in done.stderr and "Traceback" not in done.stderr


def test_it_starts_without_torch(tmp_path):
    path = write(tmp_path, PREDICTIONS)
    code = ("import sys\nfrom garage.cli import main\nsys.argv = ['garage', 'eval', 'gsm8k', '--predictions', sys.argv[1], '--json']\n"
            "try:\n    main()\nfinally:\n    print('TORCH' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)\n")
    env = dict(os.environ, GARAGE_VAR_DIR=str(tmp_path / "var"))
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "NO TORCH" in done.stderr and json.loads(done.stdout)["n"] == 5


def test_it_runs_through_call_command(tmp_path):
    out = StringIO()
    call_command("eval", "gsm8k", "--predictions", str(write(tmp_path, PREDICTIONS)), "--json",
                 "--per-item", str(tmp_path / "items.jsonl"), stdout=out)
    assert json.loads(out.getvalue())["accuracy"] == pytest.approx(0.6)
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == 5
    with pytest.raises(CommandError, match="No such file") as error:
        call_command("eval", "gsm8k", "--predictions", str(tmp_path / "missing.jsonl"), "--json")
    assert error.value.returncode == 2
