"""The benchmark engine alone: data loading, prompts, grading, with a small local generate function and the tiny
model through workers.engine.inference.generate."""
import json

import pytest

from workers.common.evaluation import BenchmarkSpec, validate
from workers.engine.evaluate.benchmarks import (conversation, few_shot_examples, grade_predictions, load_aime, load_gsm8k,
                                                run_benchmark, select)
from workers.common.errors import Cancelled, ReadableError
from workers.engine.reporting import RecordingReporter
from tests.fixtures.models import hub_off


def answer_key(spec):
    """A generate function that knows the references: it answers each problem correctly, in the requested form."""
    key = {p["question"]: p["answer"] for p in load_gsm8k(spec.split or "test", spec.source or None)}
    calls = []

    def generate(conversations, *, max_new_tokens, temperature, top_p, seed, batch_size):
        calls.append({"n": len(conversations), "temperature": temperature, "seed": seed, "batch_size": batch_size,
                      "max_new_tokens": max_new_tokens})
        out = []
        for messages in conversations:
            question = next(q for q in key if q in messages[-1]["content"])
            out.append(f"Let me think step by step.\nSo the result is {key[question]}.\n#### {key[question]}")
        return out

    generate.calls = calls
    return generate


def test_it_ships_gsm8k():
    test, train = load_gsm8k("test"), load_gsm8k("train")
    assert (len(test), len(train)) == (1319, 7473)
    assert test[0]["answer"] == "18" and test[0]["question"].startswith("Janet")
    assert all("," not in p["answer"] for p in train)


def test_it_selects_the_first_problems_or_a_seeded_subset():
    problems = [{"id": str(i)} for i in range(100)]
    assert [p["id"] for p in select(problems, BenchmarkSpec(limit=3))] == ["0", "1", "2"]
    first = select(problems, BenchmarkSpec(limit=5, subset="random", seed=7))
    assert first == select(problems, BenchmarkSpec(limit=5, subset="random", seed=7))
    assert first != select(problems, BenchmarkSpec(limit=5, subset="random", seed=8))
    assert [int(p["id"]) for p in first] == sorted(int(p["id"]) for p in first)
    assert len(select(problems, BenchmarkSpec(limit=None))) == 100


def test_it_builds_prompts_with_worked_examples():
    spec = BenchmarkSpec(few_shot=2, system_prompt="You are good at maths.")
    examples = few_shot_examples(spec)
    assert len(examples) == 2
    assert "<<" not in examples[0]["solution"] and examples[0]["solution"].endswith("#### 72")
    messages = conversation(spec, "What is 2 + 2?", examples)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[-1]["content"].startswith("What is 2 + 2?") and "####" in messages[-1]["content"]
    aime = BenchmarkSpec(benchmark="aime", few_shot=1, prompt_template="Q: {question}\nUse \\boxed{}.")
    assert few_shot_examples(aime)[0]["solution"].endswith("\\boxed{72}.")
    assert conversation(aime, "x?", [])[-1]["content"] == "Q: x?\nUse \\boxed{}."


def test_it_scores_a_model_that_knows_the_answers():
    spec = BenchmarkSpec(limit=5, batch_size=2, max_new_tokens=64)
    generate = answer_key(spec)
    reporter = RecordingReporter()
    result = run_benchmark(spec, generate, reporter)
    assert result["n"] == 5 and result["accuracy"] == 1.0 and result["format_rate"] == 1.0
    assert result["mean_length_chars"] == sum(len(i["completion"]) for i in result["items"]) / 5
    assert [i["index"] for i in result["items"]] == [0, 1, 2, 3, 4]
    assert result["items"][0]["extracted"] == "18" and result["items"][0]["reference"] == "18"
    assert [c["n"] for c in generate.calls] == [2, 2, 1]
    assert all(c["temperature"] == 0.0 and c["max_new_tokens"] == 64 for c in generate.calls)
    assert reporter.phases == ["loading", "generating", "done"] and reporter.progress_values[-1] == 1.0
    assert reporter.metrics[-1]["accuracy"] == 1.0
    json.dumps(result)  # stored as JSON by the job


def test_it_counts_unformatted_and_wrong_answers():
    spec = BenchmarkSpec(limit=4)

    def generate(conversations, **kwargs):
        # right but unformatted, wrong but formatted, no answer at all, right and formatted
        return ["She makes 18 dollars.", "#### 5", "I don't know.", "The answer is $10."]

    result = run_benchmark(spec, generate, RecordingReporter())
    assert [i["correct"] for i in result["items"]] == [True, False, False, False]
    assert [i["formatted"] for i in result["items"]] == [False, True, False, True]
    assert [i["extracted"] for i in result["items"]] == ["18", "5", None, "10"]
    assert (result["accuracy"], result["format_rate"]) == (0.25, 0.5)


def test_it_passes_sampling_settings_through():
    spec = BenchmarkSpec(limit=2, temperature=0.7, top_p=0.9, seed=3, batch_size=1)
    seen = []

    def generate(conversations, **kwargs):
        seen.append(kwargs)
        return ["#### 1"] * len(conversations)

    run_benchmark(spec, generate, RecordingReporter())
    assert [(k["temperature"], k["top_p"], k["seed"]) for k in seen] == [(0.7, 0.9, 3), (0.7, 0.9, 4)]


def test_it_stops_when_cancelled():
    spec = BenchmarkSpec(limit=6, batch_size=2)
    with pytest.raises(Cancelled):
        run_benchmark(spec, answer_key(spec), RecordingReporter(stop_after_metrics=1))


@pytest.mark.parametrize("changes,message", [
    ({"benchmark": "mmlu"}, "Unknown benchmark"), ({"prompt_template": "No placeholder"}, "{question}"),
    ({"few_shot": 99}, "Few shot"), ({"limit": 0}, "Limit"), ({"temperature": -1.0}, "Temperature"),
    ({"subset": "middle"}, "first"), ({"max_new_tokens": 0}, "Max new tokens"),
])
def test_it_rejects_impossible_settings(changes, message):
    with pytest.raises(ReadableError, match=message):
        validate(BenchmarkSpec(**changes))


def test_it_reads_aime_from_a_local_file(tmp_path):
    path = tmp_path / "aime.jsonl"
    path.write_text('{"id": "2024-I-1", "problem": "Find $x$ if $x+1=34$.", "answer": "033"}\n\n'
                    '{"question": "Compute 2+2.", "answer": 4}\n')
    problems = load_aime(str(path))
    assert [(p["id"], p["answer"]) for p in problems] == [("2024-I-1", "033"), ("1", "4")]

    def generate(conversations, **kwargs):
        return ["x = 33, so the answer is $\\boxed{33}$.", "2+2 = 4"]

    result = run_benchmark(BenchmarkSpec(benchmark="aime", source=str(path)), generate, RecordingReporter())
    assert (result["accuracy"], result["format_rate"]) == (1.0, 0.5)
    assert "\\boxed{<answer>}" in result["settings"]["prompt_template"]


def test_it_explains_bad_data(tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x", "answer": 1}\nnot json\n')
    with pytest.raises(ReadableError, match="Line 2 of bad.jsonl is not valid JSON"):
        load_aime(str(bad))
    fieldless = tmp_path / "fieldless.jsonl"
    fieldless.write_text('{"text": "x"}\n')
    with pytest.raises(ReadableError, match="needs 'problem' and 'answer'"):
        load_aime(str(fieldless))
    with pytest.raises(ReadableError, match="does not exist"):
        load_aime(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ReadableError, match="does not exist"):
        load_gsm8k(path=tmp_path / "missing.jsonl")
    # Only Hub ids reach load_dataset, never a local folder it would read instead.
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for source in ("owner/name", "../etc", "/etc/passwd", "a/b/c"):
        with pytest.raises(ReadableError, match="is not a Hugging Face dataset id"):
            load_aime(source)
    hub_off(monkeypatch)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ReadableError, match="Could not load the AIME dataset 'someone/no-such-aime'"):
        load_aime("someone/no-such-aime")


def test_it_grades_prediction_files_rows():
    summary, items = grade_predictions([{"completion": "#### 1,234", "answer": "He has ... #### 1,234"},
                                        {"completion": "it is 7", "answer": "7"}])
    assert (summary["n"], summary["accuracy"], summary["format_rate"]) == (2, 1.0, 0.5)
    assert [i["extracted"] for i in items] == ["1234", "7"]


def test_it_runs_the_tiny_model_through_the_inference_engine(tmp_path):
    from workers.engine import inference
    from workers.engine.train.tiny_model import build_tiny_gemma3

    folder = build_tiny_gemma3(tmp_path / "tiny", [p["question"] for p in load_gsm8k("train")[:200]])
    ref = inference.ModelRef(path=str(folder))

    def generate(conversations, **kwargs):
        return inference.generate(ref, conversations, **kwargs)

    try:
        result = run_benchmark(BenchmarkSpec(limit=3, max_new_tokens=8, batch_size=2), generate, RecordingReporter())
    finally:
        inference.CACHE.clear()
    assert result["n"] == 3 and len(result["items"]) == 3
    assert result["accuracy"] == 0.0  # a random tiny model knows no maths
    assert all(isinstance(i["completion"], str) for i in result["items"])
