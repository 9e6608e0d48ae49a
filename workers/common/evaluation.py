"""What an evaluation takes, shared by the web and the worker: the benchmarks, their default prompts, the limits of
their settings and the BenchmarkSpec dataclass with its checks (workers.engine.evaluate.benchmarks runs a spec), and
the held-out evaluation's HeldoutSettings (workers.engine.evaluate.heldout runs it). The web process reads the names,
prompts and limits from here and checks a run's settings before any job exists. Light: no Django, no engine."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers.common.answers import reference_answer
from workers.common.errors import ReadableError
from workers.common.judge import rubric_text
from workers.common.paths import DATA_DIR
from workers.common.records import HUB_ID

# ------------------------------------------------------------------------------------------------ benchmarks

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


# ------------------------------------------------------------------------------------------------ held-out evaluation

DEFAULT_BATCH_SIZE = 16


@dataclass
class HeldoutSettings:
    """How to ask. `max_new_tokens` None: from the reference lengths (see workers.engine.evaluate.heldout.answer_budget).
    `judge_rubric`: the user's criteria for the judge (at most workers.common.judge.MAX_RUBRIC characters); empty for
    the default prompt."""

    batch_size: int = DEFAULT_BATCH_SIZE
    max_new_tokens: int | None = None
    judge_rubric: str = ""

    def validate(self) -> None:
        if not 1 <= self.batch_size <= 512:
            raise ReadableError("The batch size must be between 1 and 512.")
        if self.max_new_tokens is not None and not 1 <= self.max_new_tokens <= 32_768:
            raise ReadableError("The maximum number of new tokens must be between 1 and 32768.")
        self.judge_rubric = rubric_text(self.judge_rubric)


# --- data the web reads too (creating a GSM8K run counts its problems) -----------------------------------

GSM8K_DIR = DATA_DIR / "gsm8k"


def read_jsonl(path: Path) -> list[dict]:
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


def load_gsm8k(split: str = "test", path: str | Path | None = None) -> list[dict]:
    """GSM8K problems: {id, question, answer (the final number), solution (the worked answer)}."""
    file = Path(path) if path else GSM8K_DIR / f"{split or 'test'}.jsonl"
    problems = []
    for index, row in enumerate(read_jsonl(file)):
        if not isinstance(row.get("question"), str) or not isinstance(row.get("answer"), str):
            raise ReadableError(f"Problem {index + 1} of {file.name} needs 'question' and 'answer' text.")
        problems.append({"id": str(row.get("id", index)), "question": row["question"],
                         "answer": reference_answer(row["answer"]), "solution": row["answer"]})
    return problems
