"""LLM judges: how the project asks a chat model for scores and reads them back. One module for the three judges
(GRPO's reward judge in workers.common.rewards, the held-out evaluation's judge, the curation judge), so that they
ask the same way, read answers the same way, and take a user's rubric the same way.

Asking: `StructuredJudge().ask(send, conversations, name=..., schema=...)` sends the conversations through a
transport `send(conversations, **params) -> list[Result]` (the shape of workers.common.llm.ChatClient.complete_many;
callers add their audit log and scrubbing around it), passing `response_format={"type": "json_schema", ...}` with
the JSON schema of the expected answer (`score_schema()`, or `ratings_schema(count)` for a batch), so that servers
with structured output (vLLM, OpenAI, Gemini, llama.cpp, Ollama) answer exactly that shape. Many endpoints refuse the option (400 or 422 naming it: see
workers.common.llm's `refused_options`): then the request is sent once more without it, and the judge remembers,
so no later request is refused for it again. Support is learnt from one request, sent alone, before the others.
Use one StructuredJudge per endpoint (client) and run: it is that endpoint's memory.

Reading: `parse_scores(text, count)` (a batch, by 1-based pair number) and `parse_score(text)` (one score) are the
one salvage parser: JSON first (an object with a score or rating, a list of {id, rating}, {"ratings": [...]}, inside
``` fences or prose, after a reasoning model's <think> block), then the near-misses models write: `"id": 2,
"rating": 7` fragments, "Score: 7/10", "score = 3", a bare "8" or "8/10". A fraction x/N is scaled to the range; a
value outside the range is no score.

Rubrics: `rubric_text(rubric)` checks a user's rubric (at most MAX_RUBRIC characters) and `rubric_block(rubric)` is
what judge prompts add for it ("" for none, so prompts without a rubric stay as they were).

Light: workers.common.llm only; no Django, no engine."""
from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable

from workers.common.errors import ReadableError
from workers.common.llm import FATAL_STATUSES, Result, chat_text

logger = logging.getLogger(__name__)

MAX_RUBRIC = 4000  # characters of a user's rubric (GRPO's judge, curation, the held-out evaluation)


# ---------------------------------------------------------------------------------------------------------------
# Rubrics
# ---------------------------------------------------------------------------------------------------------------

def rubric_text(rubric, *, label: str = "The judge's rubric") -> str:
    """The rubric, stripped; ReadableError when it is not text or longer than MAX_RUBRIC characters."""
    if rubric is None:
        return ""
    if not isinstance(rubric, str):
        raise ReadableError(f"{label} must be text.")
    rubric = rubric.strip()
    if len(rubric) > MAX_RUBRIC:
        raise ReadableError(f"{label} is too long ({len(rubric):,} characters; at most {MAX_RUBRIC:,}).")
    return rubric


def rubric_block(rubric: str | None) -> str:
    """What a judge prompt adds for a user's rubric: the criteria to apply, or "" without one."""
    rubric = (rubric or "").strip()[:MAX_RUBRIC]
    if not rubric:
        return ""
    return f"Apply this rubric, written by the person who asked for the rating:\n\"\"\"\n{rubric}\n\"\"\"\n\n"


# ---------------------------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------------------------

def score_schema(*, low: float = 0, high: float = 10, integer: bool = False, reason: bool = False) -> dict:
    """The JSON schema of one score: {"score": <low..high>} (and a "reason" string when asked for)."""
    properties = {"score": {"type": "integer" if integer else "number", "minimum": low, "maximum": high}}
    if reason:
        properties["reason"] = {"type": "string"}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def ratings_schema(count: int, *, low: float = 1, high: float = 10) -> dict:
    """The JSON schema of a batch's ratings: {"ratings": [{"id": <1..count>, "rating": <low..high>}, ...]}. An object
    around the list, because OpenAI's structured output wants an object at the top; the parser reads both."""
    item = {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1, "maximum": count},
                                             "rating": {"type": "number", "minimum": low, "maximum": high}},
            "required": ["id", "rating"], "additionalProperties": False}
    return {"type": "object", "properties": {"ratings": {"type": "array", "items": item, "minItems": count,
                                                         "maxItems": count}},
            "required": ["ratings"], "additionalProperties": False}


def response_format(name: str, schema: dict) -> dict:
    """The OpenAI-style `response_format` asking for JSON of this schema."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


# ---------------------------------------------------------------------------------------------------------------
# Asking
# ---------------------------------------------------------------------------------------------------------------

def refused_structured_output(result) -> bool:
    """Whether a request failed because the endpoint does not take `response_format`."""
    return not getattr(result, "ok", True) and "response_format" in (getattr(result, "refused_options", ()) or ())


class StructuredJudge:
    """What one endpoint takes, and asking it accordingly: structured output while the endpoint takes it (see the
    module docstring). `structured`: None until an answer says, then True or False; pass False to never ask.
    Thread-safe: concurrent callers wait for the first one's probe."""

    def __init__(self, *, structured: bool | None = None):
        self.structured = structured
        self._probe = threading.Lock()

    def ask(self, send: Callable[..., list], conversations: list[list[dict]], *, name: str, schema: dict) -> list:
        """One answer per conversation, in order: what `send(conversations, **params)` returns (workers.common.llm
        Results, or any form the caller's transport gives). Refused structured requests are resent without it, and
        only those."""
        if not conversations:
            return []
        if self.structured is None:
            with self._probe:
                if self.structured is None:  # still unknown: one request alone tells, before the others go out
                    first = self._send(send, conversations[:1], name, schema)
                    if _fatal(first[0]):  # a refused key or an unknown model: the others would be refused too
                        return first + [_failed_like(first[0], index) for index in range(1, len(conversations))]
                    return first + _reindexed(self._send(send, conversations[1:], name, schema), 1)
        return self._send(send, conversations, name, schema)

    def _send(self, send, conversations, name, schema) -> list:
        if not conversations:
            return []
        if self.structured is False:
            return _reindexed(list(send(conversations)), 0)
        answers = list(send(conversations, response_format=response_format(name, schema)))
        refused = [position for position, answer in enumerate(answers) if refused_structured_output(answer)]
        if refused:
            if self.structured is not False:
                logger.info("The judge's endpoint does not take response_format; asking without it from now on.")
            self.structured = False
            again = list(send([conversations[position] for position in refused]))
            for position, answer in zip(refused, again):
                answers[position] = answer
        elif any(getattr(answer, "ok", True) for answer in answers):
            self.structured = True
        return _reindexed(answers, 0)


def _fatal(answer) -> bool:
    return not getattr(answer, "ok", True) and getattr(answer, "status", None) in FATAL_STATUSES


def _failed_like(answer, index: int) -> Result:
    """A request not sent because an earlier one was refused for good (as ChatClient.complete_many does)."""
    return Result(index=index, error=answer.error, status=answer.status)


def _reindexed(answers: list, offset: int) -> list:
    for position, answer in enumerate(answers):
        if isinstance(answer, Result):
            answer.index = offset + position
    return answers


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------

_NUMBER = r"-?\d+(?:\.\d+)?"
_FRACTION_RE = re.compile(rf"^\s*({_NUMBER})\s*(?:(?:/|out of)\s*({_NUMBER}))?\s*$", re.IGNORECASE)
# "Score: 7", "score = 3", "Rating: 9/10", "score": "7", "Score: 7 out of 10"
_LABELLED_RE = re.compile(rf"(?:score|rating)[^\w-]{{0,5}}({_NUMBER})(?:\s*(?:/|out of)\s*({_NUMBER}))?", re.IGNORECASE)
# A whole answer that is a number: "9", "8/10."
_BARE_RE = re.compile(rf"^\s*({_NUMBER})\s*(?:/\s*({_NUMBER}))?\s*\.?\s*$")
# Pieces of a list that almost parses: `"id": 2, "rating": 7`
_FRAGMENT_RE = re.compile(rf'"?(?:id|index)"?\s*:\s*"?(\d+)"?\s*,\s*"?(?:rating|score)"?\s*:\s*"?({_NUMBER})', re.IGNORECASE)
_FENCE_RE = re.compile(r"^```[\w-]*\s*|\s*```$")
_OPENING_RE = re.compile(r"[\[{]")
_ID_KEYS = ("id", "index")
_SCORE_KEYS = ("rating", "score")
_LIST_KEYS = ("ratings", "scores", "items", "results")
MAX_JSON_CANDIDATES = 50  # JSON values tried in one answer: judge answers are short, prose may hold many braces


def _scaled(value: float, denominator: float | None, low: float, high: float) -> float | None:
    """A value (of `denominator` when one was written) on the low..high scale, or None when outside it."""
    if denominator is not None:
        if not denominator > 0 or not 0 <= value <= denominator:
            return None
        value = value / denominator * high
    if not math.isfinite(value) or not low <= value <= high:
        return None
    return value


def _value(raw, low: float, high: float) -> float | None:
    """A score given as a JSON value: a number, or text such as "7" or "8/10"; booleans are not scores."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, (int, float)):
        return _scaled(float(raw), None, low, high)
    if isinstance(raw, str) and (match := _FRACTION_RE.match(raw)):
        return _scaled(float(match.group(1)), float(match.group(2)) if match.group(2) else None, low, high)
    return None


def _json_values(text: str):
    """JSON values in the answer: the whole of it, else each object or list that starts somewhere in it."""
    try:
        yield json.loads(text)
        return
    except ValueError:
        pass
    decoder, tried, position = json.JSONDecoder(), 0, 0
    while tried < MAX_JSON_CANDIDATES:
        match = _OPENING_RE.search(text, position)
        if match is None:
            return
        tried += 1
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            position = match.start() + 1
            continue
        yield value
        position = end


def _items(value, count: int) -> list | None:
    """The rated items a JSON value holds: a list, a {"ratings": [...]} object, or one object with a score (which,
    without an id, can only be the score of a single item)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in _LIST_KEYS:
            if isinstance(value.get(key), list):
                return value[key]
        if any(key in value for key in _SCORE_KEYS) and (count == 1 or any(key in value for key in _ID_KEYS)):
            return [value]
    return None


def _from_items(items: list, count: int, low: float, high: float) -> dict[int, float]:
    ratings: dict[int, float] = {}
    for position, item in enumerate(items, start=1):
        if isinstance(item, dict):
            number = next((item[key] for key in _ID_KEYS if key in item), position)
            rating = next((_value(item[key], low, high) for key in _SCORE_KEYS if key in item), None)
        elif len(items) == count:  # a bare list of ratings, one per pair in order
            number, rating = position, _value(item, low, high)
        else:
            continue
        if isinstance(number, bool) or not isinstance(number, (int, str)) or not str(number).strip().isdigit():
            continue
        if rating is not None and 1 <= int(number) <= count:
            ratings.setdefault(int(number), rating)
    return ratings


def parse_scores(text: str | None, count: int, *, low: float = 1, high: float = 10) -> dict[int, float]:
    """Scores by 1-based item number (1..count) from a judge's answer, each on the low..high scale; what cannot be
    read is absent. See the module docstring for the forms read."""
    text = _FENCE_RE.sub("", chat_text(text))
    if not text or count < 1:
        return {}
    ratings: dict[int, float] = {}
    for value in _json_values(text):
        items = _items(value, count)
        if items is not None and (ratings := _from_items(items, count, low, high)):
            break
    # Models often almost follow the format: salvage `"id": 2, "rating": 7` fragments for the pairs still missing.
    for number, raw in _FRAGMENT_RE.findall(text):
        rating = _value(raw, low, high)
        if rating is not None and 1 <= int(number) <= count:
            ratings.setdefault(int(number), rating)
    if not ratings and count == 1:
        # One item rated in prose: "Score: 7/10", or just "8".
        match = _LABELLED_RE.search(text) or _BARE_RE.match(text)
        if match:
            rating = _scaled(float(match.group(1)), float(match.group(2)) if match.group(2) else None, low, high)
            if rating is not None:
                ratings[1] = rating
    return ratings


def parse_score(text: str | None, *, low: float = 0, high: float = 10) -> float | None:
    """One score on the low..high scale from a judge's answer, or None when it holds no readable score in range."""
    return parse_scores(text, 1, low=low, high=high).get(1)


def fraction(score: float | None, *, high: float = 10) -> float | None:
    """A 0..high score as a number from 0 to 1 (None stays None)."""
    return None if score is None else score / high

