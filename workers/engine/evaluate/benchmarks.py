"""Benchmarks any model can run: GSM8K (grade-school maths, shipped in data/gsm8k) and AIME (competition maths,
from the Hugging Face Hub or a local JSONL file).

`run_benchmark(spec, generate_fn, reporter)` asks the model every selected problem (optionally after a few
worked GSM8K examples as earlier chat turns), reads the final answer of each completion with workers.common.answers and
reports accuracy, format adherence (the answer came with the marker the prompt asks for: `####`, `\\boxed{}`,
"The answer is", ...), the mean completion length and one row per problem. `generate_fn` has the signature of
workers.engine.inference.generate without its first argument (the model), so tests and the CLI can pass any function.
The settings (BenchmarkSpec, validate, the default prompts and limits) live in workers.common.evaluation, which the web
reads too. Pure engine code: no Django."""
from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Callable

from workers.common.answers import answers_match, extract_answer, reference_answer
from workers.common.errors import Cancelled, ReadableError
from workers.common.evaluation import AIME_DEFAULT_SOURCE, ANSWER_LINES, BenchmarkSpec, load_gsm8k, read_jsonl, validate
from workers.common.records import hub_dataset_id_check
from workers.engine.reporting import Reporter



# --- data ----------------------------------------------------------------------------------------------------------

def _field(row: dict, names: tuple[str, ...]):
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    return None


def load_aime(source: str = "", split: str = "") -> list[dict]:
    """AIME problems {id, question, answer} from a local JSONL file (fields problem or question, and answer) or a
    Hugging Face dataset id (needs the network, or the dataset in the local Hub cache)."""
    source = source or AIME_DEFAULT_SOURCE
    path = Path(source).expanduser()
    if path.suffix in (".jsonl", ".json"):
        rows = read_jsonl(path)
    else:
        try:
            source = hub_dataset_id_check(source)  # never a local folder, which load_dataset would prefer
        except ReadableError:
            raise ReadableError(f"'{source}' is not a Hugging Face dataset id (owner/name) or a JSONL file.") from None
        try:
            from datasets import load_dataset

            rows = [dict(row) for row in load_dataset(source, split=split or "train")]
        except Exception as exc:  # offline, unknown id, wrong split: all the same to the user
            raise ReadableError(f"Could not load the AIME dataset '{source}' from the Hugging Face Hub "
                                f"({type(exc).__name__}). Without a network connection, give a local JSONL file "
                                f"with 'problem' and 'answer' fields instead.") from exc
    problems = []
    for index, row in enumerate(rows):
        question = _field(row, ("problem", "question", "Problem", "Question"))
        answer = _field(row, ("answer", "Answer", "expected_answer"))
        if not isinstance(question, str) or answer is None:
            raise ReadableError(f"Problem {index + 1} of the AIME data needs 'problem' and 'answer' fields.")
        problems.append({"id": str(_field(row, ("id", "ID", "problem_idx")) or index), "question": question,
                         "answer": str(answer).strip(), "solution": str(row.get("solution") or "")})
    return problems


def load_problems(spec: BenchmarkSpec) -> list[dict]:
    if spec.benchmark == "gsm8k":
        return load_gsm8k(spec.split or "test", spec.source or None)
    return load_aime(spec.source, spec.split)


def select(problems: list[dict], spec: BenchmarkSpec) -> list[dict]:
    """The problems to ask: all, the first `limit`, or a seeded random `limit` of them in dataset order."""
    if spec.limit is None or spec.limit >= len(problems):
        return list(problems)
    if spec.subset == "random":
        chosen = sorted(random.Random(spec.seed).sample(range(len(problems)), spec.limit))
        return [problems[i] for i in chosen]
    return problems[:spec.limit]


def few_shot_examples(spec: BenchmarkSpec, exclude: set[str] = frozenset()) -> list[dict]:
    """The first `few_shot` GSM8K training problems as worked examples {question, solution}: the calculator
    annotations removed and the last line in the benchmark's answer form. Fixed, so runs compare."""
    if not spec.few_shot:
        return []
    examples = []
    for problem in load_gsm8k("train"):
        if problem["question"] in exclude:
            continue
        reasoning = re.sub(r"<<[^<>]*>>", "", problem["solution"].rsplit("####", 1)[0]).strip()
        examples.append({"question": problem["question"],
                         "solution": f"{reasoning}\n{ANSWER_LINES[spec.benchmark].format(answer=problem['answer'])}"})
        if len(examples) == spec.few_shot:
            break
    return examples


def conversation(spec: BenchmarkSpec, question: str, examples: list[dict]) -> list[dict]:
    """The chat a problem is asked in: the system prompt, the worked examples as earlier turns, the problem."""
    messages = [{"role": "system", "content": spec.system_prompt}] if spec.system_prompt.strip() else []
    for example in examples:
        messages.append({"role": "user", "content": spec.prompt_template.replace("{question}", example["question"])})
        messages.append({"role": "assistant", "content": example["solution"]})
    messages.append({"role": "user", "content": spec.prompt_template.replace("{question}", question)})
    return messages


# --- running -------------------------------------------------------------------------------------------------------

def grade(completion: str, reference: str) -> dict:
    """One completion against its reference: extracted (str or None), formatted, correct."""
    extraction = extract_answer(completion)
    return {"extracted": extraction.value, "formatted": extraction.formatted, "marker": extraction.marker,
            "correct": answers_match(extraction.value, reference)}


def summarize(items: list[dict]) -> dict:
    """Accuracy, format rate and mean completion length (in characters and in whitespace-separated words)."""
    n = len(items)
    if not n:
        return {"n": 0, "correct": 0, "accuracy": 0.0, "format_rate": 0.0, "mean_length_chars": 0.0,
                "mean_length_words": 0.0}
    correct = sum(1 for item in items if item["correct"])
    return {"n": n, "correct": correct, "accuracy": correct / n,
            "format_rate": sum(1 for item in items if item["formatted"]) / n,
            "mean_length_chars": sum(len(item["completion"]) for item in items) / n,
            "mean_length_words": sum(len(item["completion"].split()) for item in items) / n}


GenerateFn = Callable[..., list[str]]


def run_benchmark(spec: BenchmarkSpec, generate_fn: GenerateFn, reporter: Reporter) -> dict:
    """Run a benchmark: `generate_fn(conversations, *, max_new_tokens, temperature, top_p, seed, batch_size)` answers
    each conversation. Reports phases, progress and the running accuracy; stops between batches when the reporter
    says so (raising Cancelled). Returns the summary (see summarize), the settings and `items`, one row per problem:
    index, id, question, reference, completion, extracted, formatted, marker, correct."""
    validate(spec)
    reporter.phase("loading", f"Loading {spec.benchmark.upper()} problems")
    problems = select(load_problems(spec), spec)
    if not problems:
        raise ReadableError("The benchmark data has no problems.")
    examples = few_shot_examples(spec, exclude={p["question"] for p in problems})
    reporter.log(f"{len(problems)} problems, {len(examples)} worked examples, "
                 f"{'greedy decoding' if spec.temperature == 0 else f'sampling at temperature {spec.temperature}'}")
    reporter.phase("generating", f"Answering {len(problems)} problems")
    started = time.monotonic()
    items: list[dict] = []
    # Several generation batches per step: progress and cancellation are checked between steps.
    step = max(spec.batch_size, 1)
    for start in range(0, len(problems), step):
        if reporter.should_stop():
            raise Cancelled()
        chunk = problems[start:start + step]
        completions = generate_fn([conversation(spec, p["question"], examples) for p in chunk],
                                  max_new_tokens=spec.max_new_tokens, temperature=spec.temperature, top_p=spec.top_p,
                                  seed=spec.seed + start, batch_size=spec.batch_size)
        if len(completions) != len(chunk):
            raise RuntimeError(f"generate returned {len(completions)} completions for {len(chunk)} conversations")
        for offset, (problem, completion) in enumerate(zip(chunk, completions)):
            items.append({"index": start + offset, "id": problem["id"], "question": problem["question"],
                          "reference": problem["answer"], "completion": completion or "",
                          **grade(completion or "", problem["answer"])})
        summary = summarize(items)
        reporter.metric(step=len(items), accuracy=summary["accuracy"], format_rate=summary["format_rate"])
        reporter.progress(len(items) / len(problems), f"{len(items)} of {len(problems)} answered, "
                                                      f"{summary['correct']} correct")
    summary = summarize(items)
    reporter.phase("done", f"Accuracy {summary['accuracy']:.1%}, format {summary['format_rate']:.1%}")
    return {**summary, "benchmark": spec.benchmark, "seconds": round(time.monotonic() - started, 2),
            "few_shot_used": len(examples), "settings": spec.as_dict(), "items": items}


def grade_predictions(rows: list[dict]) -> tuple[dict, list[dict]]:
    """`garage eval gsm8k`: rows with `completion` and `answer` (GSM8K answer text or a bare answer) graded.
    Returns the summary (n, accuracy, format_rate, correct, mean lengths) and one row per input."""
    items = []
    for row in rows:
        graded = grade(row["completion"], reference_answer(str(row["answer"])))
        items.append({"completion": row["completion"], "reference": reference_answer(str(row["answer"])), **graded})
    return summarize(items), items
