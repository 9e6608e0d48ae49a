"""Held-out evaluation: the base model and the tuned model answer the questions a training set aside, each answer
is scored against the reference, and the report says how much the tuning helped and where.

`evaluate_heldout(examples, answer_base, answer_tuned, reporter, judge=...)`:
- asks both models every question (greedy, as a chat in the model's own template with the example's system
  prompt: the same conversation training built), in batches grouped by reference length so that each batch may
  decode only about as many tokens as its longest reference needs;
- scores each answer with workers.engine.evaluate.scoring (exact match, token F1, ROUGE-L) and, when a judge is given, by an
  LLM judge that rates the answer against the reference from 0 to 10 (kept as 0 to 1), by the user's rubric when
  the settings carry one; a judge request that fails or answers something unreadable is counted, never fatal;
- aggregates the means per model, and orders the examples by how much their token F1 changed.

`answer_base` and `answer_tuned` have the signature of workers.engine.inference.generate without its model argument, so
tests and the CLI can pass any function. `judge` takes a list of conversations (and request options, such as
response_format) and returns one workers.common.llm.Result per conversation (ChatClient.complete_many's shape); it is
asked through workers.common.judge, which asks for structured output where the endpoint takes it. How to ask (HeldoutSettings) lives in workers.common.evaluation,
which the web reads too. Pure engine code: no Django."""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from workers.common.errors import Cancelled, ReadableError
from workers.common.evaluation import HeldoutSettings
from workers.common.judge import StructuredJudge, fraction, parse_score, rubric_block, score_schema
from workers.engine.reporting import Reporter
from workers.engine.evaluate.scoring import score

# The conversation training builds from an example; evaluating with anything else would measure another task.
from workers.engine.train.train import _messages as training_messages
from workers.common.paths import DATA_DIR

METRICS = ("exact_match", "token_f1", "rouge_l")
PRIMARY_METRIC = "token_f1"  # what "changed most" and the publishing gate compare
# A change in token F1 smaller than this counts as "same": float noise and single-token wobbles are not news.
SAME_TOLERANCE = 0.01
MAX_EXAMPLES = 5_000
# Decoding budget: the reference's length plus a quarter and a few tokens, so a correct answer always fits and a
# rambling one is cut soon after it could have ended.
BUDGET_FACTOR = 1.25
BUDGET_EXTRA = 8
MIN_NEW_TOKENS = 16
MAX_NEW_TOKENS = 1024

JUDGE_SYSTEM = ("You grade answers to questions against a reference answer. Judge whether the candidate answer says "
                "what the reference says: correct facts and completeness matter, wording and length do not. "
                "Reply with JSON only.")
JUDGE_TEMPLATE = """Question:
\"\"\"
{question}
\"\"\"

Reference answer:
\"\"\"
{reference}
\"\"\"

Candidate answer:
\"\"\"
{answer}
\"\"\"

{rubric}Rate the candidate answer from 0 (wrong, missing or unrelated) to 10 (says everything the reference says, with
nothing false). Reply with exactly one JSON object and nothing else: {{"score": <integer from 0 to 10>}}"""
JUDGE_SCHEMA = score_schema(integer=True)

# A fixed set of general questions small real models answer, shipped with the project: asked of the base and the
# tuned model after every training, it shows what the tuning cost in what the model knew before (forgetting).
CONTROL_SET = DATA_DIR / "control" / "general.jsonl"

AnswerFn = Callable[..., list[str]]
JudgeFn = Callable[[list[list[dict]]], list]


def load_control_set(path: str | Path = CONTROL_SET) -> list[dict]:
    """The control questions ({"question", "answer", "group": "control"}), in the file's order."""
    examples = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            examples.append({"question": record["question"], "answer": record["answer"], "group": "control"})
    return examples


def rough_token_count(text: str) -> int:
    """A tokenizer-free estimate (about four characters a token, never fewer tokens than words), for callers that
    have no tokenizer at hand."""
    text = text or ""
    return max(len(text.split()), math.ceil(len(text) / 4))


def answer_budget(reference_tokens: int, *, cap: int = MAX_NEW_TOKENS) -> int:
    """New tokens to allow for an answer whose reference is `reference_tokens` long."""
    return max(MIN_NEW_TOKENS, min(cap, math.ceil(reference_tokens * BUDGET_FACTOR) + BUDGET_EXTRA))


def conversation(example: dict) -> list[dict]:
    return training_messages(example["question"], system=example.get("system") or "")


def _check_examples(examples: list[dict]) -> None:
    if not examples:
        raise ReadableError("There are no held-out examples to evaluate on: this dataset version set none aside. "
                            "Freeze a version with at least five examples to get a held-out share.")
    if len(examples) > MAX_EXAMPLES:
        raise ReadableError(f"There are {len(examples):,} held-out examples; at most {MAX_EXAMPLES:,} can be evaluated.")
    for example in examples:
        if not isinstance(example.get("question"), str) or not isinstance(example.get("answer"), str):
            raise ReadableError("Each held-out example needs a question and an answer.")


def _batches(examples: list[dict], settings: HeldoutSettings, count_tokens: Callable[[str], int]) -> list[tuple[list[int], int]]:
    """(indices, max_new_tokens) per generation call: examples sorted by reference length, so that a batch of short
    answers is not made to decode as long as the longest answer of the whole set."""
    lengths = [count_tokens(example["answer"]) for example in examples]
    order = sorted(range(len(examples)), key=lambda i: (lengths[i], i))
    batches = []
    for start in range(0, len(order), settings.batch_size):
        indices = order[start:start + settings.batch_size]
        budget = settings.max_new_tokens or answer_budget(max(lengths[i] for i in indices))
        batches.append((indices, budget))
    return batches


def _answer(name: str, answer_fn: AnswerFn, examples: list[dict], batches, reporter: Reporter,
            span: tuple[float, float]) -> list[str]:
    answers: list[str] = [""] * len(examples)
    done, start, end = 0, *span
    for indices, budget in batches:
        if reporter.should_stop():
            raise Cancelled()
        texts = answer_fn([conversation(examples[i]) for i in indices], max_new_tokens=budget, temperature=0.0,
                          top_p=1.0, seed=0, batch_size=len(indices))
        if len(texts) != len(indices):
            raise RuntimeError(f"the {name} model gave {len(texts)} answers to {len(indices)} questions")
        for i, text in zip(indices, texts):
            answers[i] = (text or "").strip()
        done += len(indices)
        reporter.progress(start + (end - start) * done / len(examples),
                          f"The {name} model answered {done} of {len(examples)} questions")
    return answers


# ------------------------------------------------------------------------------------------------ judge

def judge_conversation(*, question: str, reference: str, answer: str, rubric: str = "") -> list[dict]:
    """The judge's conversation; a user's rubric goes before the rating instruction (none: the default prompt)."""
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": JUDGE_TEMPLATE.format(question=question, reference=reference,
                                                              answer=answer or "(no answer)", rubric=rubric_block(rubric))}]


def _judge(judge: JudgeFn, examples: list[dict], base: list[str], tuned: list[str], reporter: Reporter, *,
           rubric: str = "") -> tuple[dict, list, list]:
    """Ratings of every answer (None where the judge failed) and a summary: means, how many were judged and failed,
    the first error."""
    conversations = []
    for example, base_answer, tuned_answer in zip(examples, base, tuned):
        for answer in (base_answer, tuned_answer):
            conversations.append(judge_conversation(question=example["question"], reference=example["answer"],
                                                    answer=answer, rubric=rubric))
    if reporter.should_stop():
        raise Cancelled()
    try:
        results = StructuredJudge().ask(judge, conversations, name="rating", schema=JUDGE_SCHEMA)
    except ReadableError as exc:  # the endpoint could not even be set up (deleted provider, no default any more)
        results, setup_error = [None] * len(conversations), str(exc)
    else:
        setup_error = None
    ratings: list[float | None] = []
    errors: list[str] = []
    unreadable = 0
    for result in results:
        if result is None:
            ratings.append(None)
            continue
        if not result.ok:
            ratings.append(None)
            errors.append(result.error or "The judge request failed.")
            continue
        rating = fraction(parse_score(result.text))  # the 0-10 rating as a number from 0 to 1
        if rating is None:
            unreadable += 1
        ratings.append(rating)
    base_ratings, tuned_ratings = ratings[0::2], ratings[1::2]
    failed = sum(1 for r in ratings if r is None)
    summary = {"base": _mean(base_ratings), "tuned": _mean(tuned_ratings), "judged": len(ratings) - failed,
               "failed": failed, "unreadable": unreadable,
               "error": setup_error or (errors[0] if errors else ("The judge's replies could not be read as a rating."
                                                                   if unreadable else None))}
    if failed:
        reporter.log(f"The judge rated {summary['judged']} of {len(ratings)} answers; {failed} failed"
                     + (f" ({unreadable} unreadable)" if unreadable else "") + (f": {summary['error']}" if summary["error"] else ""))
    return summary, base_ratings, tuned_ratings


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


# ------------------------------------------------------------------------------------------------ the run

def _means(items: list[dict]) -> dict:
    return {side: {metric: sum(item[side][metric] for item in items) / len(items) for metric in METRICS}
            for side in ("base", "tuned")}


def change_of(delta: float) -> str:
    if delta > SAME_TOLERANCE:
        return "improved"
    if delta < -SAME_TOLERANCE:
        return "worse"
    return "same"


def evaluate_heldout(examples: list[dict], answer_base: AnswerFn, answer_tuned: AnswerFn, reporter: Reporter, *,
                     settings: HeldoutSettings | None = None, judge: JudgeFn | None = None,
                     count_tokens: Callable[[str], int] | None = None, top: int = 5) -> dict:
    """Evaluate on `examples` ({"question", "answer", "system"?, "group"?}): see the module docstring.

    Returns {"examples": n, "base": {metric: mean}, "tuned": {...}, "judge": {...} or None, "counts": {"improved",
    "worse", "same"}, "groups": {group: {"n", "base": {metric: mean}, "tuned": {...}}} for the examples' groups
    (recall, unseen, control...), "most_improved": [index...], "most_worse": [index...], "seconds", "items": [one
    dict per example, in input order: index, group, base_answer, tuned_answer, base/tuned scores (and judge),
    f1_delta, change]}.
    Raises ReadableError for no examples or impossible settings, Cancelled when the reporter says stop."""
    settings = settings or HeldoutSettings()
    settings.validate()
    _check_examples(examples)
    count_tokens = count_tokens or rough_token_count
    started = time.monotonic()
    batches = _batches(examples, settings, count_tokens)
    answer_end = 0.85 if judge else 0.95
    reporter.phase("answering with the base model", f"{len(examples)} held-out questions")
    base_answers = _answer("base", answer_base, examples, batches, reporter, (0.0, answer_end / 2))
    reporter.phase("answering with the tuned model", f"{len(examples)} held-out questions")
    tuned_answers = _answer("tuned", answer_tuned, examples, batches, reporter, (answer_end / 2, answer_end))

    judge_summary, base_ratings, tuned_ratings = None, [None] * len(examples), [None] * len(examples)
    if judge is not None:
        reporter.phase("judging", f"An LLM judge rates {2 * len(examples)} answers against the references")
        judge_summary, base_ratings, tuned_ratings = _judge(judge, examples, base_answers, tuned_answers, reporter,
                                                            rubric=settings.judge_rubric)

    reporter.phase("scoring", "Comparing the answers with the references")
    items = []
    for index, example in enumerate(examples):
        base_scores = score(base_answers[index], example["answer"], example["question"])
        tuned_scores = score(tuned_answers[index], example["answer"], example["question"])
        delta = tuned_scores[PRIMARY_METRIC] - base_scores[PRIMARY_METRIC]
        items.append({"index": index, "base_answer": base_answers[index], "tuned_answer": tuned_answers[index],
                      "base": {**base_scores, "judge": base_ratings[index]},
                      "tuned": {**tuned_scores, "judge": tuned_ratings[index]},
                      "f1_delta": delta, "change": change_of(delta), "group": example.get("group") or ""})
    n = len(items)
    means = _means(items)
    groups = {}
    for group in dict.fromkeys(item["group"] for item in items if item["group"]):
        members = [item for item in items if item["group"] == group]
        groups[group] = {"n": len(members), **_means(members)}
    counts = {name: sum(1 for item in items if item["change"] == name) for name in ("improved", "worse", "same")}
    # Largest changes first; ties keep the dataset's order so that a report is the same every time.
    improved = sorted((item for item in items if item["change"] == "improved"), key=lambda it: (-it["f1_delta"], it["index"]))
    worse = sorted((item for item in items if item["change"] == "worse"), key=lambda it: (it["f1_delta"], it["index"]))
    reporter.metric(step=n, base_token_f1=means["base"]["token_f1"], tuned_token_f1=means["tuned"]["token_f1"])
    reporter.progress(1.0, "Done")
    reporter.phase("done", f"Token F1 {means['base']['token_f1']:.3f} → {means['tuned']['token_f1']:.3f} on {n} "
                           f"held-out questions")
    return {"examples": n, "metric": PRIMARY_METRIC, "base": means["base"], "tuned": means["tuned"],
            "judge": judge_summary, "counts": counts, "groups": groups, "most_improved": [it["index"] for it in improved[:top]],
            "most_worse": [it["index"] for it in worse[:top]], "seconds": round(time.monotonic() - started, 2),
            "settings": {"batch_size": settings.batch_size, "max_new_tokens": settings.max_new_tokens}, "items": items}
