"""Benchmarks any model can run: GSM8K (grade-school maths, shipped in data/gsm8k) and AIME (competition maths,
from the Hugging Face Hub or a local JSONL file).

`run_benchmark(spec, generate_fn, reporter)` asks the model every selected problem (optionally after a few
worked GSM8K examples as earlier chat turns), reads the final answer of each completion with workers.answers and
reports accuracy, format adherence (the answer came with the marker the prompt asks for: `####`, `\\boxed{}`,
"The answer is", ...), the mean completion length and one row per problem. `generate_fn` has the signature of
workers.inference.generate without its first argument (the model), so tests and the CLI can pass any function.
Pure engine code: no Django."""
from __future__ import annotations

import json
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from workers.answers import answers_match, extract_answer, reference_answer
from workers.errors import Cancelled, ReadableError
from workers.records import HUB_ID, hub_dataset_id_check
from workers.reporting import Reporter

GSM8K_DIR = Path(__file__).resolve().parent.parent / "data" / "gsm8k"
AIME_DEFAULT_SOURCE = "HuggingFaceH4/aime_2024"
HUB_ID_RE = HUB_ID  # the one pattern of Hub dataset ids (apps.evaluation checks sources with it)
BENCHMARKS = {"gsm8k": "GSM8K (grade-school maths, 1,319 test problems)",
              "aime": "AIME (competition maths; answers are integers from 0 to 999)"}

# The prompts ask for the form the extractor reads best; `{question}` is replaced by the problem (other braces,
# as in \boxed{}, are left alone).
DEFAULT_PROMPTS = {
    "gsm8k": "{question}\n\nSolve the problem step by step. Write the final answer as a number on the last line, "
             "in the form \"#### <number>\".",
    "aime": "{question}\n\nSolve the problem step by step, then give the final answer (an integer from 0 to 999) "
            "as \\boxed{<answer>}.",
}
# How the worked few-shot examples end, matching what each prompt asks for.
ANSWER_LINES = {"gsm8k": "#### {answer}", "aime": "The final answer is \\boxed{{{answer}}}."}
LIMITS = {"few_shot": (0, 16), "limit": (1, 100_000), "max_new_tokens": (1, 32_768), "batch_size": (1, 512),
          "temperature": (0.0, 2.0), "top_p": (0.01, 1.0), "seed": (0, 2**31 - 1)}


@dataclass
class BenchmarkSpec:
    """What to run. `limit` None means every problem; `subset` "first" takes the first `limit` problems, "random"
    a sample drawn with `seed` (kept in the dataset's order). `temperature` 0 is greedy decoding. `source` is the
    data: a JSONL path (GSM8K: default data/gsm8k/<split>.jsonl; AIME: a file with problem and answer fields) or,
    for AIME, a Hub dataset id."""

    benchmark: str = "gsm8k"
    prompt_template: str = ""
    system_prompt: str = ""
    few_shot: int = 0
    limit: int | None = None
    subset: str = "first"
    seed: int = 0
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 8
    source: str = ""
    split: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.prompt_template:
            self.prompt_template = DEFAULT_PROMPTS.get(self.benchmark, "{question}")

    def as_dict(self) -> dict:
        return asdict(self)


def validate(spec: BenchmarkSpec) -> None:
    """ReadableError for settings that cannot run."""
    if spec.benchmark not in BENCHMARKS:
        raise ReadableError(f"Unknown benchmark '{spec.benchmark}'. Choose one of: {', '.join(BENCHMARKS)}.")
    if "{question}" not in spec.prompt_template:
        raise ReadableError("The prompt template must contain {question}, where each problem goes.")
    if spec.subset not in ("first", "random"):
        raise ReadableError("The sample must be 'first' (the first problems) or 'random' (a seeded random subset).")
    for name, (low, high) in LIMITS.items():
        value = getattr(spec, name)
        if value is None and name == "limit":
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise ReadableError(f"{name.replace('_', ' ').capitalize()} must be between {low} and {high}.")


# --- data ----------------------------------------------------------------------------------------------------------

def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise ReadableError(f"The data file {path} does not exist.")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ReadableError(f"Line {number} of {path.name} is not valid JSON.") from None
            if not isinstance(row, dict):
                raise ReadableError(f"Line {number} of {path.name} is not a JSON object.")
            rows.append(row)
    return rows


def _field(row: dict, names: tuple[str, ...]):
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    return None


def load_gsm8k(split: str = "test", path: str | Path | None = None) -> list[dict]:
    """GSM8K problems: {id, question, answer (the final number), solution (the worked answer)}."""
    file = Path(path) if path else GSM8K_DIR / f"{split or 'test'}.jsonl"
    problems = []
    for index, row in enumerate(_read_jsonl(file)):
        if not isinstance(row.get("question"), str) or not isinstance(row.get("answer"), str):
            raise ReadableError(f"Problem {index + 1} of {file.name} needs 'question' and 'answer' text.")
        problems.append({"id": str(row.get("id", index)), "question": row["question"],
                         "answer": reference_answer(row["answer"]), "solution": row["answer"]})
    return problems


def load_aime(source: str = "", split: str = "") -> list[dict]:
    """AIME problems {id, question, answer} from a local JSONL file (fields problem or question, and answer) or a
    Hugging Face dataset id (needs the network, or the dataset in the local Hub cache)."""
    source = source or AIME_DEFAULT_SOURCE
    path = Path(source).expanduser()
    if path.suffix in (".jsonl", ".json"):
        rows = _read_jsonl(path)
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
