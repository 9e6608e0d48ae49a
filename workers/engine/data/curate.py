"""Curation of question-answer pairs: length limits, exact and near-duplicate questions, an optional LLM judge.

Pure Python (numpy for the MinHash signatures): no Django, no torch. The engine takes examples in a fixed order
and says which to keep; when two questions are duplicates the earlier one stays, so callers pass the oldest first.

Near duplicates are found with MinHash and locality-sensitive hashing over character 3-grams of the normalised
question: each question is compared only with the kept questions that share a band bucket with it, then the
candidates are confirmed with the exact Jaccard similarity of their 3-gram sets. That keeps thousands of pairs
well under a second, where comparing every pair with every other would grow with the square of the count.

Similar characters are not enough: "What is the population of Lyon?" and "What is the population of Nice?"
share a template and ask different things. So the words where two similar questions differ decide: when each
has a content word the other lacks (Lyon against Nice, 1990 against 1991), they are different questions; when
they differ only in small words or spelling ("What's" against "What is", "colour" against "color"), or one
only adds words to the other, they are one question. Phrasings of one fact (the same `fact` key) are asked
apart on purpose and are never near duplicates of each other; the very same question twice still is.

The judge, as in synthetic-data-kit's curate step, asks a chat model to rate each pair from 1 to 10 (a few pairs
per request; by the user's rubric too when the config carries one) and removes pairs rated below a threshold. It
asks and reads through workers.common.judge (structured output where the endpoint takes it, one salvage parser).
A judge answer that cannot be read leaves its pairs unrated; they are counted and kept, because a failed judgement
is no evidence against the pair.
"""
from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from workers.common.curation import CurateConfig
from workers.common.errors import Cancelled, ReadableError
from workers.common.judge import StructuredJudge, parse_scores, ratings_schema, rubric_block
from workers.common.records import Example

SHINGLE = 3
PERMUTATIONS = 128
_RNG = np.random.default_rng(20240229)  # fixed: the same data always curates the same way
_A = _RNG.integers(1, 2**63, size=PERMUTATIONS, dtype=np.uint64) | np.uint64(1)
_B = _RNG.integers(0, 2**63, size=PERMUTATIONS, dtype=np.uint64)


@dataclass
class Removal:
    index: int
    reason: str  # too_short, too_long, exact_duplicate, near_duplicate, low_rating
    detail: str
    duplicate_of: int | None = None


@dataclass
class CurateResult:
    kept: list[int]
    removed: list[Removal]
    ratings: dict[int, float] = field(default_factory=dict)
    unrated: int = 0
    judge_requests: int = 0
    judge_failures: int = 0

    def counts(self) -> dict[str, int]:
        counts = {"kept": len(self.kept), "removed": len(self.removed), "unrated": self.unrated,
                  "judge_requests": self.judge_requests, "judge_failures": self.judge_failures}
        for removal in self.removed:
            counts[removal.reason] = counts.get(removal.reason, 0) + 1
        return counts


# ---------------------------------------------------------------------------------------------- duplicates


def normalise(text: str) -> str:
    """Case, accents' composed forms, punctuation and spacing do not make a question different."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def shingles(text: str) -> set[str]:
    text = normalise(text)
    if len(text) <= SHINGLE:
        return {text} if text else set()
    return {text[i:i + SHINGLE] for i in range(len(text) - SHINGLE + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def minhash(grams: set[str]) -> np.ndarray:
    """A MinHash signature: for each of PERMUTATIONS hash functions (multiply-shift), the least hash of a 3-gram."""
    if not grams:
        return np.zeros(PERMUTATIONS, dtype=np.uint64)
    hashes = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64, count=len(grams))
    # uint64 arithmetic wraps around, which is what multiply-shift hashing wants.
    return ((_A[:, None] * hashes[None, :] + _B[:, None]) >> np.uint64(32)).min(axis=1)


def _bands(threshold: float) -> tuple[int, int]:
    """(bands, rows per band): two questions of Jaccard similarity s share a bucket with probability
    1 - (1 - s^rows)^bands. The most rows (fewest chance candidates among merely similar questions) that still
    keep that probability above 98% at the threshold."""
    best = 1
    for rows in range(1, 17):
        bands = PERMUTATIONS // rows
        if 1 - (1 - threshold ** rows) ** bands >= 0.98:
            best = rows
    return PERMUTATIONS // best, best


# Words whose difference does not make a question different.
_FUNCTION_WORDS = frozenset("""
what which who whom whose when where why how is are was were be been being am do does did has have had got get
the a an of in on at to for by with from s it its that this there can could would will shall should may might
must please tell me you your i my we our about and or so just any some name named called kind sort type exactly
actually really also only ever still one ones
""".split())


def _one_edit(a: str, b: str) -> bool:
    """Whether two words differ by at most one inserted, deleted or changed letter."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def _same_word(a: str, b: str) -> bool:
    if a.isdigit() or b.isdigit():
        return a == b
    if a.rstrip("s") == b.rstrip("s") or a + "es" == b or b + "es" == a:
        return True  # plural and singular
    return min(len(a), len(b)) >= 5 and _one_edit(a, b)


def same_question(a: str, b: str) -> bool:
    """Whether two similar questions ask the same thing: false when each has a content word the other lacks
    and no spelling of it (a shared template filled with different names, numbers or terms)."""
    words_a, words_b = normalise(a).split(), normalise(b).split()
    only_a = {w for w in words_a if w not in _FUNCTION_WORDS} - set(words_b)
    only_b = {w for w in words_b if w not in _FUNCTION_WORDS} - set(words_a)
    only_a = {w for w in only_a if not any(_same_word(w, v) for v in only_b)}
    only_b = {w for w in only_b if not any(_same_word(w, v) for v in words_a)}
    return not (only_a and only_b)


def find_duplicates(questions: Sequence[str], *, exact: bool = True, near: bool = True, threshold: float = 0.8,
                    should_stop: Callable[[], bool] = lambda: False,
                    facts: Sequence[str] | None = None) -> dict[int, tuple[str, int]]:
    """Which questions repeat an earlier kept one: {index: ("exact_duplicate" | "near_duplicate", earlier index)}.

    `facts` (one key per question, "" for a question that stands alone) keeps the phrasings of one fact
    from being taken for near duplicates of each other."""
    duplicates: dict[int, tuple[str, int]] = {}
    first_by_text: dict[str, int] = {}
    bands, rows = _bands(threshold)
    buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
    grams_of: dict[int, set[str]] = {}
    signature_of: dict[int, np.ndarray] = {}
    for index, question in enumerate(questions):
        if index % 500 == 0 and should_stop():
            raise Cancelled()
        key = normalise(question)
        if exact and key in first_by_text:
            duplicates[index] = ("exact_duplicate", first_by_text[key])
            continue
        if near:
            grams = shingles(question)
            signature = minhash(grams)
            keys = [signature[b * rows:(b + 1) * rows].tobytes() for b in range(bands)]
            candidates = sorted({c for band, band_key in enumerate(keys) for c in buckets[band].get(band_key, ())})
            if len(candidates) > 8:
                # The share of equal signature entries estimates the similarity; only plausible ones get the exact check.
                estimates = (np.stack([signature_of[c] for c in candidates]) == signature).mean(axis=1)
                candidates = [c for c, e in zip(candidates, estimates) if e >= threshold - 0.15]
            fact = facts[index] if facts is not None else ""
            match = next((c for c in candidates if jaccard(grams, grams_of[c]) >= threshold
                          and not (fact and facts[c] == fact) and same_question(question, questions[c])), None)
            if match is not None:
                duplicates[index] = ("exact_duplicate" if normalise(questions[match]) == key else "near_duplicate", match)
                continue
            grams_of[index] = grams
            signature_of[index] = signature
            for band, band_key in enumerate(keys):
                buckets[band].setdefault(band_key, []).append(index)
        first_by_text.setdefault(key, index)
    return duplicates


# ---------------------------------------------------------------------------------------------- the judge

JUDGE_SYSTEM = "You are a strict reviewer of training data for fine-tuning language models. You answer only with JSON."
JUDGE_PROMPT = """Rate each question-answer pair below from 1 (useless) to 10 (excellent) as an example for fine-tuning a model.
Judge: accuracy (the answer is correct and answers the question), relevance{task}, clarity (the question makes sense on its own), usefulness.

{rubric}Return exactly this JSON and nothing else, one object per pair, in order:
[{{"id": 1, "rating": 8}}, {{"id": 2, "rating": 3}}]

{pairs}"""


def judge_messages(batch: Sequence[tuple[int, Example]], task_description: str = "", rubric: str = "") -> list[dict]:
    """The chat messages asking the judge to rate a batch of (id, example); a user's rubric goes before the answer's
    format (none: the default prompt)."""
    task = f" (the model should be good at: {task_description.strip()[:500]})" if task_description.strip() else ""
    pairs = "\n\n".join(f"Pair {number}:\nQuestion: {example.question}\nAnswer: {example.answer}"
                        for number, (_, example) in enumerate(batch, start=1))
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": JUDGE_PROMPT.format(task=task, pairs=pairs, rubric=rubric_block(rubric))}]


# The judge's transport: given several conversations (and request options, such as response_format), answer each,
# in order, with a workers.common.llm.Result (`ok`, `text`, `error`), a string, or an exception; one failed request
# must not sink the others. `lambda conversations, **params: client.complete_many(conversations, temperature=0,
# **params)` of a workers.common.llm.ChatClient fits.
CompleteMany = Callable[[list[list[dict]]], list]


def _answer(answer) -> tuple[str | None, str | None]:
    """(text, error) of one transport answer, whatever its form."""
    if isinstance(answer, BaseException):
        return None, str(answer) if isinstance(answer, ReadableError) else type(answer).__name__
    if hasattr(answer, "ok"):
        return (answer.text, None) if answer.ok else (None, answer.error or "the request failed")
    return (answer if isinstance(answer, str) else None), None


def judge_examples(examples: Sequence[tuple[int, Example]], complete_many: CompleteMany, *, batch_size: int = 5,
                   task_description: str = "", rubric: str = "", reporter=None) -> tuple[dict[int, float], int, int]:
    """Rate examples with the judge. Returns ({index: rating}, requests sent, requests that failed or were unreadable).

    Raises ReadableError when every request failed to reach the judge (an endpoint that is down or refuses the key):
    then nothing could be judged, and saying so helps more than a run that quietly rated nothing."""
    batches = [list(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]
    ratings: dict[int, float] = {}
    failures = 0
    transport_errors: list[str] = []
    judge = StructuredJudge()  # what the endpoint takes is learnt on the first request and kept for the run
    # Requests go out in groups, so progress and a cancel are noticed while a long judgement runs.
    group = 16
    for start in range(0, len(batches), group):
        if reporter is not None and reporter.should_stop():
            raise Cancelled()
        chunk = batches[start:start + group]
        answers: list = [None] * len(chunk)
        # The schema names how many pairs a batch has: batches of one size go together (only the last is shorter).
        for size in dict.fromkeys(len(batch) for batch in chunk):
            positions = [position for position, batch in enumerate(chunk) if len(batch) == size]
            asked = judge.ask(complete_many, [judge_messages(chunk[p], task_description, rubric) for p in positions],
                              name="ratings", schema=ratings_schema(size))
            for position, answer in zip(positions, asked):
                answers[position] = answer
        for batch, answer in zip(chunk, answers):
            text, error = _answer(answer)
            if error is not None:
                transport_errors.append(error)
            got = parse_scores(text, len(batch), low=1, high=10)
            if len(got) < len(batch):
                failures += 1
            for number, (index, _) in enumerate(batch, start=1):
                if number in got:
                    ratings[index] = got[number]
        if reporter is not None:
            done = min(len(examples), (start + len(chunk)) * batch_size)
            reporter.progress(round(0.3 + 0.7 * (start + len(chunk)) / len(batches), 6), f"Judged {done} of {len(examples)} pairs")
    if batches and len(transport_errors) == len(batches):
        raise ReadableError(f"The judge could not be reached, so nothing was curated. {transport_errors[0]}")
    return ratings, len(batches), failures


# ---------------------------------------------------------------------------------------------- the whole step


def curate(examples: Sequence[Example], config: CurateConfig, reporter=None,
           complete_many: CompleteMany | None = None, facts: Sequence[str] | None = None) -> CurateResult:
    """Decide which examples to keep: length limits first (cheapest), then duplicates, then the judge (costliest,
    so it only sees what survived). `facts` gives each example's fact key ("" when it stands alone): phrasings
    of one fact are not near duplicates of each other. Raises ReadableError for impossible settings, Cancelled
    when asked to stop."""
    config.validate()
    if config.judge and complete_many is None:
        raise ReadableError("The judge needs a chat model: configure a provider first.")
    removed: list[Removal] = []
    alive: list[int] = []
    if reporter is not None:
        reporter.phase("limits", f"{len(examples)} pairs")
    for index, example in enumerate(examples):
        reason = _length_problem(example, config)
        if reason:
            removed.append(Removal(index=index, reason=reason[0], detail=reason[1]))
        else:
            alive.append(index)

    if config.dedupe_exact or config.dedupe_near:
        if reporter is not None:
            reporter.phase("deduplicating", f"{len(alive)} pairs")
        duplicates = find_duplicates([examples[i].question for i in alive], exact=config.dedupe_exact,
                                     near=config.dedupe_near, threshold=config.near_threshold,
                                     should_stop=reporter.should_stop if reporter is not None else (lambda: False),
                                     facts=[facts[i] or "" for i in alive] if facts is not None else None)
        survivors = []
        for position, index in enumerate(alive):
            if position in duplicates:
                reason, earlier = duplicates[position]
                original = alive[earlier]
                what = "The same question as" if reason == "exact_duplicate" else "Nearly the same question as"
                removed.append(Removal(index=index, reason=reason, duplicate_of=original,
                                       detail=f"{what} an earlier pair: {examples[original].question[:120]}"))
            else:
                survivors.append(index)
        alive = survivors
        if reporter is not None:
            reporter.progress(0.3, f"{len(alive)} pairs after removing duplicates")

    result = CurateResult(kept=alive, removed=removed)
    if config.judge and alive:
        if reporter is not None:
            reporter.phase("judging", f"{len(alive)} pairs, threshold {config.judge_threshold:g}")
        ratings, requests, failures = judge_examples([(i, examples[i]) for i in alive], complete_many,
                                                     batch_size=config.judge_batch_size,
                                                     task_description=config.task_description,
                                                     rubric=config.judge_rubric, reporter=reporter)
        result.ratings, result.judge_requests, result.judge_failures = ratings, requests, failures
        kept = []
        for index in alive:
            rating = ratings.get(index)
            if rating is not None and rating < config.judge_threshold:
                removed.append(Removal(index=index, reason="low_rating",
                                       detail=f"Rated {rating:g} of 10, below the threshold of {config.judge_threshold:g}"))
            else:
                kept.append(index)
        result.unrated = sum(1 for index in alive if index not in ratings)
        result.kept = kept
        if reporter is not None and result.unrated:
            reporter.log(f"The judge gave no readable rating for {result.unrated} pairs; they were kept.")
    removed.sort(key=lambda r: r.index)
    return result


def _length_problem(example: Example, config: CurateConfig) -> tuple[str, str] | None:
    for text, low, high, what in ((example.question, config.min_question_chars, config.max_question_chars, "question"),
                                  (example.answer, config.min_answer_chars, config.max_answer_chars, "answer")):
        length = len(text.strip())
        if low and length < low:
            return "too_short", f"The {what} has {length} characters, fewer than {low}"
        if high and length > high:
            return "too_long", f"The {what} has {length} characters, more than {high}"
    return None
