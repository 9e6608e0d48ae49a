"""Prompt optimization: reflective prompt evolution of a system prompt, in the style of GEPA (Agrawal et al.,
"GEPA: Reflective Prompt Evolution Can Outperform Reinforcement Learning", 2025).

Pure engine code: no Django. Its settings (PromptOptConfig, the metrics and limits) are in workers.common.promptopt. The
Celery task (apps.prompts.jobs.optimized_prompt_execute) builds the two
backends (an OpenAI-compatible endpoint through workers.common.llm.ChatClient, or a local model through
workers.engine.inference.generate) and a reporter, and stores what `on_candidate` hands it.

Why not the `gepa` package itself: its budget counts metric calls only (reflection calls are free) and is checked
between iterations, so one accepted candidate's full validation pass can overshoot it; this product promises a
budget in *model calls*, task and reflection alike, never exceeded. Its dependencies (litellm for the models) would
also bypass our client, its audit log and its readable errors. The algorithm is small, so it lives here:

1. The seed prompt answers every validation example (one task call each). The pool starts as [seed].
2. Each round: pick a parent from the Pareto front over validation examples (a candidate stays on the front while
   it is best on at least one example and no other candidate dominates it; the pick is weighted by on how many
   examples it is best); take a minibatch of training examples (epoch-shuffled); score the parent on it (scores are
   cached per prompt and example, a cached one costs no call); when the parent is perfect there, take another.
3. The reflection model reads the parent prompt and its failures (question, answer, reference, score) and proposes
   an improved prompt inside ``` fences (one call). A reply without a usable prompt costs its call and is skipped.
4. The child answers the same minibatch. When it beats the parent there, it answers the whole validation set and
   joins the pool; otherwise it is recorded as rejected.
5. A round starts only when the budget left covers all its calls (the minibatch shrinks to fit), so the run stops
   cleanly before the budget rather than after. The best prompt is the pool's best by mean validation score,
   ties going to the earlier candidate: the seed is in the pool, so the result is never worse than the seed on the
   validation set.

Every HTTP request counts as a call: the endpoint client retries nothing by itself (max_retries=0), and a failed
request is resent here only when the budget left after the round's planned calls allows it."""
from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from workers.common.errors import Cancelled, ReadableError
from workers.common.llm import RETRYABLE_STATUSES, chat_text
from workers.common.promptopt import MAX_PROMPT_CHARS, METRICS, PromptOptConfig

logger = logging.getLogger(__name__)

# Rounds in a row that found the parent perfect on its minibatch: after this many the training set has nothing left
# to teach, and the run ends early rather than spin.
MAX_PERFECT_ROUNDS = 20

REFLECTION_TEMPLATE = """I gave an assistant the following instructions (its system prompt) for a task:
```
{prompt}
```

Here are task inputs the assistant received, its responses, the expected answers and how each was scored (scores are between 0 and 1, higher is better):
{examples}

Your task is to write a new system prompt for the assistant that makes it answer such inputs correctly.

Read the inputs carefully and infer the task and the exact answer format expected (compare the responses with the expected answers). Identify what the responses got wrong and any domain knowledge they lacked, and put it in the new instructions. If the assistant used a strategy that works in general, keep it.

Reply with the new system prompt only, inside ``` blocks."""


# ---------------------------------------------------------------------------------------------------------------
# Model backends: each answers a list of conversations and reports every request as it finishes
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Answer:
    index: int
    text: str | None = None
    error: str | None = None
    status: int | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retryable(self) -> bool:
        return not self.ok and (self.status is None or self.status in RETRYABLE_STATUSES or self.status >= 500)


class ChatBackend:
    """An OpenAI-compatible endpoint. `on_call(result)` sees each workers.common.llm.Result (for the audit log)."""

    def __init__(self, client, *, on_call: Callable | None = None, **params):
        # Each HTTP request is a budgeted call, so the client must not resend on its own: resends happen in the
        # optimizer, which counts them.
        client.max_retries = 0
        self.client, self.on_call, self.params = client, on_call, params
        self.label = f"{client.model} at {client.base_url}"

    def answer(self, conversations: list[list[dict]], on_result: Callable[[Answer], None], **params) -> list[Answer]:
        answers: list[Answer | None] = [None] * len(conversations)

        def record(result):
            if self.on_call is not None:
                self.on_call(result)
            answer = Answer(index=result.index, text=result.text, error=result.error, status=result.status,
                            attempts=result.attempts)
            answers[result.index] = answer
            on_result(answer)

        self.client.complete_many(conversations, on_result=record, **{**self.params, **params})
        # After a fatal error (a refused key) the requests not sent come back with attempts 0: nothing was spent.
        return [a if a is not None else Answer(index=i, error="Not sent.", attempts=0) for i, a in enumerate(answers)]


class LocalBackend:
    """A local model: `generate(conversations, max_new_tokens=..., temperature=...) -> list[str]`, called in small
    batches so that a cancel is seen between them."""

    def __init__(self, generate: Callable[..., list[str]], *, label: str = "local model", batch_size: int = 8, **params):
        self.generate, self.label, self.batch_size, self.params = generate, label, max(1, batch_size), params

    def answer(self, conversations: list[list[dict]], on_result: Callable[[Answer], None], **params) -> list[Answer]:
        params = {**self.params, **params}
        if "max_tokens" in params:  # the endpoints' name for it; workers.engine.inference.generate's is max_new_tokens
            params["max_new_tokens"] = params.pop("max_tokens")
        answers = []
        for start in range(0, len(conversations), self.batch_size):
            texts = self.generate(conversations[start:start + self.batch_size], **params)
            for offset, text in enumerate(texts):
                answer = Answer(index=start + offset, text=text)
                answers.append(answer)
                on_result(answer)
        return answers


# ---------------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------------

def score(metric: str, prediction: str | None, reference: str) -> float:
    """One answer's score between 0 and 1 under the chosen metric."""
    from workers.engine.evaluate import scoring

    prediction = chat_text(prediction)
    if metric == "exact_match":
        return scoring.exact_match(prediction, reference)
    if metric == "token_f1":
        return scoring.token_f1(prediction, reference)
    from workers.engine.evaluate.benchmarks import grade

    return float(grade(prediction, str(reference))["correct"])


def conversation(prompt: str, question: str) -> list[dict]:
    messages = [{"role": "system", "content": prompt}] if (prompt or "").strip() else []
    return messages + [{"role": "user", "content": question}]


_FENCE = re.compile(r"```(?:[\w+-]*\n)?(.*?)```", re.DOTALL)


def parse_proposal(text: str | None) -> str | None:
    """The prompt inside the reflection model's reply: the longest ``` block, the text after an unclosed fence, or
    the whole reply when it has no fence. None when nothing is left."""
    text = chat_text(text)
    blocks = [b.strip() for b in _FENCE.findall(text)]
    if blocks:
        proposal = max(blocks, key=len)
    elif "```" in text:  # a reply cut off by its token limit: keep what came after the fence
        proposal = re.sub(r"^[\w+-]*\n", "", text.split("```", 1)[1]).strip()
    else:
        proposal = text.strip()
    return proposal or None


def reflection_prompt(prompt: str, records: list[dict], metric: str) -> str:
    parts = []
    for number, record in enumerate(records, 1):
        feedback = ("Correct." if record["score"] >= 1.0 else
                    f"Scored {record['score']:.2f} under {METRICS[metric].split(' (')[0].lower()}; the expected answer "
                    f"is: {record['reference']}")
        if record.get("error"):
            feedback = f"The model gave no answer ({record['error'][:200]})."
        parts.append(f"### Example {number}\nInput:\n{record['question']}\n\nResponse:\n{record['answer'] or '(empty)'}"
                     f"\n\nExpected answer:\n{record['reference']}\n\nScore: {record['score']:.2f}\nFeedback: {feedback}")
    return REFLECTION_TEMPLATE.format(prompt=prompt or "(no system prompt)", examples="\n\n".join(parts))


def pareto_front(val_scores: list[list[float]]) -> dict[int, int]:
    """{candidate index: on how many validation examples it is best} for the candidates on the Pareto front:
    best (ties included) on at least one example and dominated by no other such candidate."""
    if not val_scores:
        return {}
    wins: dict[int, int] = {}
    for example in range(len(val_scores[0])):
        best = max(scores[example] for scores in val_scores)
        for candidate, scores in enumerate(val_scores):
            if scores[example] == best:
                wins[candidate] = wins.get(candidate, 0) + 1

    def dominates(a, b):
        return all(x >= y for x, y in zip(val_scores[a], val_scores[b])) and val_scores[a] != val_scores[b]

    return {c: n for c, n in wins.items() if not any(dominates(o, c) for o in wins if o != c)}


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


# ---------------------------------------------------------------------------------------------------------------
# The optimizer
# ---------------------------------------------------------------------------------------------------------------

class _OutOfBudget(Exception):
    """A request would go past the budget. The planner prevents it; this guards the promise if it ever failed."""


@dataclass
class _Candidate:
    index: int
    prompt: str
    parent: int | None
    status: str  # seed, accepted, rejected, unusable, duplicate
    val_scores: list[float] = field(default_factory=list)
    minibatch: list[int] = field(default_factory=list)
    minibatch_parent_score: float | None = None
    minibatch_score: float | None = None
    calls: int = 0  # calls this candidate cost: its reflection, minibatch and validation answers
    calls_used: int = 0  # calls used by the whole run once it was scored
    note: str = ""

    @property
    def val_score(self) -> float | None:
        return mean(self.val_scores) if self.val_scores else None

    def public(self) -> dict:
        return {"index": self.index, "prompt": self.prompt, "parent": self.parent, "status": self.status,
                "val_score": self.val_score, "val_scores": self.val_scores, "minibatch": self.minibatch,
                "minibatch_parent_score": self.minibatch_parent_score, "minibatch_score": self.minibatch_score,
                "calls": self.calls, "calls_used": self.calls_used, "note": self.note}


class PromptOptimizer:
    def __init__(self, config: PromptOptConfig, task, reflection, reporter, *, on_candidate: Callable | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        config.validate()
        self.config, self.task, self.reflection, self.reporter = config, task, reflection, reporter
        self.on_candidate = on_candidate or (lambda candidate: None)
        self.sleep = sleep
        self.rng = random.Random(config.seed)
        self.used = self.task_calls = self.reflection_calls = self.failed_calls = 0
        self.pool: list[_Candidate] = []  # the candidates with validation scores (seed and accepted children)
        self.candidates: list[_Candidate] = []  # every candidate, for the record
        self.cache: dict[tuple[str, int], dict] = {}  # (prompt, training example) -> record
        self._order: list[int] = []

    # -- calls -----------------------------------------------------------------------------------------------

    @property
    def left(self) -> int:
        return self.config.budget - self.used

    def _check_stop(self) -> None:
        if self.reporter.should_stop():
            raise Cancelled()

    def _send(self, backend, conversations: list[list[dict]], *, keep: int, reflection: bool = False,
              **params) -> list[Answer]:
        """Send conversations through a backend, counting every request; failed ones that may succeed later are
        resent while the budget beyond `keep` (calls the rest of the round still needs) allows."""
        if len(conversations) > self.left:
            raise _OutOfBudget()
        self._check_stop()

        def counted(answer: Answer) -> None:
            self.used += answer.attempts
            if reflection:
                self.reflection_calls += answer.attempts
            else:
                self.task_calls += answer.attempts
            if not answer.ok and answer.attempts:
                self.failed_calls += 1
            self.reporter.progress(self.used / self.config.budget, f"{self.used} of {self.config.budget} calls used")
            self._check_stop()

        answers = backend.answer(conversations, counted, **params)
        for attempt in range(1, self.config.max_retries + 1):
            again = [a.index for a in answers if a.retryable]
            if not again or len(again) > self.left - keep:
                break
            self.sleep(self.config.retry_wait * 2 ** (attempt - 1))
            self._check_stop()
            retried = backend.answer([conversations[i] for i in again], counted, **params)
            for index, answer in zip(again, retried):
                answer.index = index
                answers[index] = answer
        fatal = next((a for a in answers if a.status in (401, 403, 404)), None)
        if fatal is not None:  # a refused key or an unknown model: no later call can do better
            raise ReadableError(fatal.error)
        return answers

    def _evaluate(self, prompt: str, examples: list[dict], indices: list[int], *, keep: int,
                  cache: bool) -> list[dict]:
        """Records {question, answer, reference, score, error} of `prompt` on the examples at `indices`."""
        records: dict[int, dict] = {}
        todo = [i for i in indices if not (cache and (prompt, i) in self.cache)]
        for i in indices:
            if i not in todo:
                records[i] = self.cache[(prompt, i)]
        if todo:
            answers = self._send(self.task, [conversation(prompt, examples[i]["question"]) for i in todo], keep=keep)
            for i, answer in zip(todo, answers):
                reference = str(examples[i].get("answer") or "")
                record = {"question": examples[i]["question"], "answer": answer.text or "", "reference": reference,
                          "score": score(self.config.metric, answer.text, reference) if answer.ok else 0.0,
                          "error": answer.error if not answer.ok else None}
                records[i] = record
                if cache and answer.ok:  # a failed call may succeed later: it is not remembered
                    self.cache[(prompt, i)] = record
        return [records[i] for i in indices]

    def _uncached(self, prompt: str, indices: list[int]) -> int:
        return sum(1 for i in indices if (prompt, i) not in self.cache)

    # -- the loop ----------------------------------------------------------------------------------------------

    def _front(self) -> list[int]:
        """The indices of the candidates now on the Pareto front."""
        return [self.pool[i].index for i in sorted(pareto_front([c.val_scores for c in self.pool]))]

    def _record(self, candidate: _Candidate) -> None:
        candidate.calls_used = self.used
        self.on_candidate(candidate.public())
        # The event carries the whole candidate and the front it leaves, so that a page can draw both as they come.
        summary = {"candidate": candidate.index, "parent": candidate.parent if candidate.parent is not None else -1,
                   "calls_used": self.used, "status": candidate.status, "prompt": candidate.prompt,
                   "note": candidate.note, "front": self._front(),
                   "best_val_score": max(c.val_score for c in self.pool) if self.pool else 0.0}
        for name in ("val_score", "minibatch_score", "minibatch_parent_score"):
            if getattr(candidate, name) is not None:
                summary[name] = getattr(candidate, name)
        self.reporter.metric(**summary)
        scores = (f"validation {candidate.val_score:.3f}" if candidate.val_score is not None else
                  f"minibatch {candidate.minibatch_score:.3f} vs parent {candidate.minibatch_parent_score:.3f}"
                  if candidate.minibatch_score is not None else candidate.note)
        parent = f" (from #{candidate.parent})" if candidate.parent is not None else ""
        self.reporter.log(f"Candidate #{candidate.index}{parent}: {candidate.status}, {scores}; "
                          f"{self.used} of {self.config.budget} calls used")

    def _select_parent(self) -> _Candidate:
        front = pareto_front([c.val_scores for c in self.pool])
        indices = sorted(front)
        return self.pool[self.rng.choices(indices, weights=[front[i] for i in indices])[0]]

    def _minibatch(self, size: int) -> list[int]:
        """The next training examples, epoch by epoch in a shuffled order, as GEPA's batch sampler does."""
        batch = []
        while len(batch) < min(size, len(self.config.train)):
            if not self._order:
                self._order = list(range(len(self.config.train)))
                self.rng.shuffle(self._order)
            index = self._order.pop()
            if index not in batch:
                batch.append(index)
        return batch

    def run(self) -> dict:
        config = self.config
        started = time.monotonic()
        val_indices = list(range(len(config.val)))
        self.reporter.phase("seed", f"Scoring the seed prompt on {len(config.val)} validation examples")
        seed = _Candidate(index=0, prompt=config.seed_prompt or "", parent=None, status="seed")
        records = self._evaluate(seed.prompt, config.val, val_indices, keep=0, cache=False)
        seed.val_scores, seed.calls = [r["score"] for r in records], self.used
        self.pool.append(seed)
        self.candidates.append(seed)
        self._record(seed)

        self.reporter.phase("evolving", "Proposing and testing new prompts")
        stopped, perfect_rounds = "budget", 0
        while True:
            self._check_stop()
            parent = self._select_parent()
            batch = self._minibatch(config.minibatch_size)
            # The round's calls: the parent's answers not cached, one reflection, the child's answers and, should the
            # child win, its validation pass. Shrink the minibatch until they fit what is left.
            while batch and self._uncached(parent.prompt, batch) + 1 + len(batch) + len(config.val) > self.left:
                batch.pop()
            if not batch:
                stopped = "budget"
                break
            parent_records = self._evaluate(parent.prompt, config.train, batch,
                                            keep=1 + len(batch) + len(config.val), cache=True)
            parent_score = mean(r["score"] for r in parent_records)
            if all(r["score"] >= 1.0 for r in parent_records):
                perfect_rounds += 1
                if perfect_rounds >= MAX_PERFECT_ROUNDS:
                    stopped = "perfect"
                    self.reporter.log("The candidates on the front answer the training examples perfectly: "
                                      "nothing left to learn from them.")
                    break
                continue
            perfect_rounds = 0
            before = self.used
            child = _Candidate(index=len(self.candidates), prompt="", parent=parent.index, status="unusable",
                               minibatch=batch, minibatch_parent_score=parent_score)
            failures = [r for r in parent_records if r["score"] < 1.0]
            reply = self._send(self.reflection, [[{"role": "user", "content": reflection_prompt(
                parent.prompt, failures, config.metric)}]], keep=len(batch) + len(config.val), reflection=True,
                max_tokens=config.reflection_max_tokens)[0]
            proposal = parse_proposal(reply.text) if reply.ok else None
            if proposal is None or len(proposal) > MAX_PROMPT_CHARS:
                child.note = (f"The reflection model failed: {reply.error[:200]}" if not reply.ok else
                              "The reflection model's reply held no prompt." if proposal is None else
                              f"The proposed prompt is longer than {MAX_PROMPT_CHARS} characters.")
                child.prompt = (proposal or "")[:MAX_PROMPT_CHARS]
            elif any(c.prompt == proposal for c in self.candidates if c.status != "unusable"):
                child.prompt, child.status = proposal, "duplicate"
                child.note = "The reflection model proposed a prompt already tried."
            else:
                child.prompt = proposal
                child_records = self._evaluate(proposal, config.train, batch, keep=len(config.val), cache=True)
                child.minibatch_score = mean(r["score"] for r in child_records)
                if child.minibatch_score > parent_score:
                    records = self._evaluate(proposal, config.val, val_indices, keep=0, cache=False)
                    child.val_scores, child.status = [r["score"] for r in records], "accepted"
                    self.pool.append(child)
                else:
                    child.status = "rejected"
                    child.note = "It did not beat its parent on the minibatch."
            child.calls = self.used - before
            self.candidates.append(child)
            self._record(child)

        best = max(self.pool, key=lambda c: (c.val_score, -c.index))
        self.reporter.log(f"Best prompt: candidate #{best.index}, validation {best.val_score:.3f} "
                          f"(seed {seed.val_score:.3f}); {self.used} of {config.budget} calls used.")
        self.reporter.progress(1.0, "Done")
        return {
            "best_index": best.index, "best_prompt": best.prompt, "best_val_score": best.val_score,
            "seed_val_score": seed.val_score, "improved": best.index != seed.index,
            "calls_used": self.used, "task_calls": self.task_calls, "reflection_calls": self.reflection_calls,
            "failed_calls": self.failed_calls, "budget": config.budget, "stopped": stopped,
            "front": self._front(), "metric": config.metric,
            "train_examples": len(config.train), "val_examples": len(config.val),
            "candidates": [c.public() for c in self.candidates], "seconds": round(time.monotonic() - started, 3),
        }


def optimize_prompt(config: PromptOptConfig, task, reflection, reporter, *, on_candidate: Callable | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> dict:
    """Run reflective prompt evolution; see the module docstring. Raises ReadableError for bad settings and for
    endpoints that refuse (wrong key, unknown model), Cancelled when the reporter asks to stop."""
    return PromptOptimizer(config, task, reflection, reporter, on_candidate=on_candidate, sleep=sleep).run()
