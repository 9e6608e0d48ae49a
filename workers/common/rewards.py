"""Reward functions for GRPO, composed from plain JSON specs so that the API and the no-code reward builder can
make them, and scored in plain Python: the web process scores pasted samples for the preview while the person waits,
and the GRPO worker scores each batch of completions.

A spec list looks like this (each entry: a `type` from LIBRARY, a `weight`, an optional `name`, its parameters):

    [{"type": "format", "weight": 0.5, "mode": "tags", "tags": ["reasoning", "answer"]},
     {"type": "answer_match", "weight": 1.0},
     {"type": "judge", "weight": 0.5, "rubric": "Is the reasoning clear and correct?", "provider": "default"}]

`validate_specs(specs)` normalises them (defaults filled in, unique names) or raises ReadableError.
`build_scorers(specs, judge_client=...)` turns them into Scorer objects scoring a batch of (prompt, completion)
pairs in [0, 1]; `trl_reward_functions(scorers)` wraps those for TRL's GRPOTrainer (signature
`reward(prompts, completions, **kwargs) -> list[float | None]`, where kwargs carry the dataset's columns, such as
`answer`); `score_samples(scorers, samples)` scores a handful of samples for the preview.

The answer match reads final answers with workers.common.answers, the extractor of the GSM8K evaluation, so training
rewards exactly what the benchmark counts. The LLM judge asks any OpenAI-compatible endpoint (workers.common.llm
ChatClient: vLLM, Ollama, Gemini's OpenAI-compatible endpoint, OpenAI) to grade each completion against a
user-written rubric. No Django, no torch."""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import math

from workers.common.answers import answers_match, extract_answer, reference_answer
from workers.common.errors import ReadableError
from workers.common.judge import MAX_RUBRIC, StructuredJudge, fraction, parse_score, score_schema


# ---------------------------------------------------------------------------------------------------------------
# Reward specs
# ---------------------------------------------------------------------------------------------------------------

MAX_FUNCTIONS = 8
MAX_PATTERN = 500
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TAG_RE = re.compile(r"^[A-Za-z][\w-]{0,30}$")
SITE_DEFAULT = "default"  # the judge's provider when none is named: the server's own endpoint

# What the builder offers. Each parameter: (kind, default, help). Kinds: text, longtext, number, integer, bool,
# choice:<a|b>, tags (a list of tag names), provider (a chat endpoint). The pages and the API document themselves
# from this table, so a new parameter needs no template change.
LIBRARY: dict[str, dict] = {
    "format": {
        "label": "Format",
        "description": "Rewards completions laid out as asked: required sections such as <reasoning>…</reasoning> "
                       "<answer>…</answer> (in that order, not empty), or a regular expression. With partial credit, "
                       "each section present earns its share; in strict mode, text outside the sections halves the "
                       "score.",
        "params": {
            "mode": ("choice:tags|regex", "tags", "Required sections (tags) or a regular expression (regex)."),
            "tags": ("tags", ["reasoning", "answer"], "Section names, in order, for the tags mode."),
            "pattern": ("text", "", "A Python regular expression the completion must contain (regex mode)."),
            "partial": ("bool", True, "Give partial credit for each section present."),
            "strict": ("bool", False, "Halve the score when there is text outside the sections."),
        },
    },
    "answer_match": {
        "label": "Correct answer (numeric match)",
        "description": "1 when the final answer in the completion equals the reference answer, else 0. Answers are "
                       "read exactly like the GSM8K evaluation reads them (<answer> tags, ####, \\boxed{}, "
                       "\"The answer is\", else the last number) and compared as numbers (1,234.50 = 1234.5). "
                       "Prompts without a reference answer are skipped.",
        "params": {
            "column": ("text", "answer", "The dataset column holding the reference answer."),
            "require_marker": ("bool", False, "Count only answers given with an explicit marker (not a bare last "
                                              "number)."),
        },
    },
    "exact": {
        "label": "Exact match",
        "description": "1 when the completion (or one section of it) equals the target text, ignoring extra "
                       "spaces (and case, unless case-sensitive), else 0.",
        "params": {
            "target": ("text", "", "The expected text; empty to use the reference column instead."),
            "column": ("text", "answer", "The dataset column with the expected text, when no target is given."),
            "section": ("text", "", "Compare only the content of this tag, such as answer; empty for the whole "
                                    "completion."),
            "case_sensitive": ("bool", False, "Upper and lower case must match."),
        },
    },
    "contains": {
        "label": "Contains",
        "description": "1 when the completion (or one section of it) contains the target text, else 0.",
        "params": {
            "target": ("text", "", "The text to look for; empty to use the reference column instead."),
            "column": ("text", "answer", "The dataset column with the text to look for, when no target is given."),
            "section": ("text", "", "Look only inside this tag, such as answer; empty for the whole completion."),
            "case_sensitive": ("bool", False, "Upper and lower case must match."),
        },
    },
    "length": {
        "label": "Length band",
        "description": "1 when the completion's length is within the band; shorter ones earn length/minimum, "
                       "longer ones lose score in proportion to the excess (0 at twice the maximum).",
        "params": {
            "unit": ("choice:words|characters", "words", "Count words or characters."),
            "min": ("integer", 0, "The shortest length that earns full score."),
            "max": ("integer", 200, "The longest length that earns full score."),
        },
    },
    "repetition": {
        "label": "No repetition",
        "description": "The share of distinct word n-grams in the completion: 1 for text that never repeats "
                       "itself, near 0 for a phrase repeated over and over. A penalty on degenerate loops.",
        "params": {
            "n": ("integer", 3, "The n-gram length in words."),
        },
    },
    "judge": {
        "label": "LLM judge",
        "description": "A chat model grades each completion against your rubric from 0 to 10 (scaled to 0–1). Any "
                       "OpenAI-compatible endpoint works (vLLM, Ollama, Gemini's OpenAI-compatible endpoint, OpenAI). "
                       "Answers are cached per (rubric, prompt, completion); requests are retried with backoff on "
                       "rate limits and server errors. A failed or unreadable judgement scores 0 or is skipped "
                       "(left out of the reward), as you choose, and is counted.",
        "params": {
            "rubric": ("longtext", "", "What a good answer looks like; the judge sees it with the prompt and the "
                                       "completion."),
            "provider": ("provider", SITE_DEFAULT, "The chat endpoint that judges."),
            "on_failure": ("choice:skip|zero", "skip", "When a judgement fails: skip it, or score it 0."),
            "include_reference": ("bool", False, "Show the judge the reference answer too."),
            "max_tokens": ("integer", 256, "The longest judgement, in tokens."),
            "cost_per_million_input": ("number", 0.0, "Price of a million prompt tokens, to estimate the cost."),
            "cost_per_million_output": ("number", 0.0, "Price of a million completion tokens."),
        },
    },
}
REWARD_LIMITS = {"weight": (-10.0, 10.0), "min": (0, 100_000), "max": (1, 100_000), "n": (1, 10),
                 "max_tokens": (16, 4096), "cost_per_million_input": (0.0, 1000.0),
                 "cost_per_million_output": (0.0, 1000.0)}


def _bool(value, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "true", "false", "True", "False", "on", "off", "yes", "no", ""):
        return value in (1, "1", "true", "True", "on", "yes")
    raise ReadableError(f"{label} must be true or false.")


def _number(value, label: str, kind: str):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReadableError(f"{label} must be a number.") from None
    if not math.isfinite(number):
        raise ReadableError(f"{label} must be a number.")
    if kind == "integer":
        if not number.is_integer():
            raise ReadableError(f"{label} must be a whole number.")
        return int(number)
    return number


def _check_range(name: str, value, label: str):
    if name in REWARD_LIMITS:
        low, high = REWARD_LIMITS[name]
        if not low <= value <= high:
            raise ReadableError(f"{label} must be between {low} and {high}.")


def validate_specs(specs) -> list[dict]:
    """The specs with every parameter present and typed, and a unique `name` per function; ReadableError (naming
    the function and the parameter) for anything that cannot work."""
    if not isinstance(specs, list) or not specs:
        raise ReadableError("Add at least one reward function.")
    if len(specs) > MAX_FUNCTIONS:
        raise ReadableError(f"Use at most {MAX_FUNCTIONS} reward functions.")
    clean, names = [], set()
    for position, spec in enumerate(specs, 1):
        if not isinstance(spec, dict):
            raise ReadableError(f"Reward function {position} must be an object with a type.")
        kind = spec.get("type")
        if kind not in LIBRARY:
            raise ReadableError(f"Reward function {position} has an unknown type '{kind}'. "
                                f"Choose one of: {', '.join(LIBRARY)}.")
        where = f"Reward function {position} ({LIBRARY[kind]['label']})"
        weight = _number(spec.get("weight", 1.0), f"{where}: the weight", "number")
        _check_range("weight", weight, f"{where}: the weight")
        entry = {"type": kind, "weight": weight}
        for name, (param_kind, default, _help) in LIBRARY[kind]["params"].items():
            label = f"{where}: {name.replace('_', ' ')}"
            value = spec.get(name, default)
            if value is None:
                value = default
            if param_kind in ("integer", "number"):
                value = _number(value, label, param_kind)
                _check_range(name, value, label)
            elif param_kind == "bool":
                value = _bool(value, label)
            elif param_kind == "tags":
                if isinstance(value, str):
                    value = [t for t in re.split(r"[\s,]+", value) if t]
                if not isinstance(value, list) or not all(isinstance(t, str) and TAG_RE.match(t) for t in value):
                    raise ReadableError(f"{label} must be a list of tag names (letters, digits, - and _).")
                if len(value) > 10:
                    raise ReadableError(f"{label}: use at most 10 tags.")
            else:
                if not isinstance(value, str):
                    raise ReadableError(f"{label} must be text.")
                if param_kind.startswith("choice:") and value not in param_kind[7:].split("|"):
                    raise ReadableError(f"{label} must be one of: {', '.join(param_kind[7:].split('|'))}.")
                limit = MAX_RUBRIC if param_kind == "longtext" else MAX_PATTERN
                if len(value) > limit:
                    raise ReadableError(f"{label} is too long (at most {limit} characters).")
            entry[name] = value
        _check_type(entry, where)
        name = str(spec.get("name") or "").strip().lower() or kind
        if not NAME_RE.match(name):
            raise ReadableError(f"{where}: the name must be lower-case letters, digits and _ (such as "
                                f"'{kind}'), starting with a letter.")
        base, suffix = name, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.add(name)
        entry["name"] = name
        clean.append(entry)
    return clean


def _check_type(entry: dict, where: str) -> None:
    kind = entry["type"]
    if kind == "format":
        if entry["mode"] == "tags" and not entry["tags"]:
            raise ReadableError(f"{where}: name at least one section tag, such as answer.")
        if entry["mode"] == "regex":
            if not entry["pattern"]:
                raise ReadableError(f"{where}: give the regular expression.")
            try:
                re.compile(entry["pattern"])
            except re.error as exc:
                raise ReadableError(f"{where}: the regular expression is not valid ({exc}).") from None
    elif kind in ("exact", "contains"):
        if not entry["target"] and not entry["column"]:
            raise ReadableError(f"{where}: give a target text or a reference column.")
        if entry["section"] and not TAG_RE.match(entry["section"]):
            raise ReadableError(f"{where}: the section must be a tag name, such as answer.")
    elif kind == "length":
        if entry["max"] < entry["min"]:
            raise ReadableError(f"{where}: the maximum length must not be below the minimum.")
    elif kind == "judge" and not entry["rubric"].strip():
        raise ReadableError(f"{where}: write the rubric the judge grades by.")


def judge_providers(specs: list[dict]) -> list[str]:
    """The endpoints the judges of these specs use (their `provider` choices), without repeats."""
    return list(dict.fromkeys(spec.get("provider") or SITE_DEFAULT for spec in specs if spec.get("type") == "judge"))


def describe(spec: dict) -> str:
    """One line saying what a function rewards, for pages and logs."""
    kind = spec["type"]
    if kind == "format":
        if spec["mode"] == "regex":
            return f"matches /{spec['pattern']}/"
        return "sections " + " ".join(f"<{t}>" for t in spec["tags"]) + (" (strict)" if spec["strict"] else "")
    if kind == "answer_match":
        return f"final answer equals the '{spec['column']}' column"
    if kind in ("exact", "contains"):
        what = f"“{spec['target']}”" if spec["target"] else f"the '{spec['column']}' column"
        where = f"<{spec['section']}>" if spec["section"] else "completion"
        return f"{where} {'equals' if kind == 'exact' else 'contains'} {what}"
    if kind == "length":
        return f"{spec['min']}–{spec['max']} {spec['unit']}"
    if kind == "repetition":
        return f"distinct {spec['n']}-grams"
    return "judged by rubric: " + " ".join(spec["rubric"].split())[:80]


# ---------------------------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------------------------

def completion_text(completion) -> str:
    """The text of a completion: TRL passes a string, or for chat datasets a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    return str(completion or "")


def prompt_text(prompt) -> str:
    """The question a prompt asks: the last user message of a chat prompt, or the prompt string itself."""
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return completion_text(users[-1:] or prompt[-1:])
    return completion_text(prompt)


def _normalise(text: str, case_sensitive: bool) -> str:
    text = " ".join(str(text).split())
    return text if case_sensitive else text.lower()


def section(text: str, tag: str) -> str | None:
    """The content of the last <tag>…</tag> in `text` (stripped), or None when there is none."""
    found = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", text, re.DOTALL | re.IGNORECASE)
    return found[-1].strip() if found else None


# ---------------------------------------------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Scorer:
    """One reward function: scores a batch of (prompt, completion) in [0, 1]; None means "no score" (skipped)."""

    spec: dict

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def weight(self) -> float:
        return self.spec["weight"]

    def score(self, prompts: list[str], completions: list[str], columns: dict[str, list]) -> list[float | None]:
        return [self.score_one(c, {k: v[i] for k, v in columns.items()}) for i, c in enumerate(completions)]

    def score_one(self, completion: str, row: dict) -> float | None:  # pragma: no cover - overridden
        raise NotImplementedError


class FormatScorer(Scorer):
    def score_one(self, completion, row):
        if self.spec["mode"] == "regex":
            return 1.0 if re.search(self.spec["pattern"], completion, re.DOTALL) else 0.0
        tags, position, found, spans = self.spec["tags"], 0, 0, []
        for tag in tags:
            # In order: each section is looked for after the end of the one before it.
            match = re.compile(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", re.DOTALL | re.IGNORECASE
                               ).search(completion, position)
            if match and match.group(1).strip():
                found += 1
                position = match.end()
                spans.append(match.span())
        if self.spec["partial"]:
            score = found / len(tags)
        else:
            score = 1.0 if found == len(tags) else 0.0
        if self.spec["strict"] and score > 0:
            outside, last = [], 0
            for start, end in spans:
                outside.append(completion[last:start])
                last = end
            outside.append(completion[last:])
            if "".join(outside).strip():
                score /= 2
        return score


class AnswerMatchScorer(Scorer):
    def score_one(self, completion, row):
        reference = row.get(self.spec["column"])
        if reference is None or str(reference).strip() == "":
            return None  # nothing to compare with: skipped, not punished
        extraction = extract_answer(completion)
        if self.spec["require_marker"] and not extraction.formatted:
            return 0.0
        return 1.0 if answers_match(extraction.value, reference_answer(str(reference))) else 0.0


class MatchScorer(Scorer):
    """Exact match and contains."""

    def score_one(self, completion, row):
        target = self.spec["target"] or row.get(self.spec["column"])
        if target is None or str(target).strip() == "":
            return None
        if self.spec["section"]:
            completion = section(completion, self.spec["section"])
            if completion is None:
                return 0.0
        case = self.spec["case_sensitive"]
        text, target = _normalise(completion, case), _normalise(str(target), case)
        if self.spec["type"] == "exact":
            return 1.0 if text == target else 0.0
        return 1.0 if target in text else 0.0


class LengthScorer(Scorer):
    def score_one(self, completion, row):
        length = len(completion.split()) if self.spec["unit"] == "words" else len(completion)
        low, high = self.spec["min"], self.spec["max"]
        if length < low:
            return length / low
        if length > high:
            return max(0.0, 1.0 - (length - high) / high)
        return 1.0


class RepetitionScorer(Scorer):
    def score_one(self, completion, row):
        words, n = completion.lower().split(), self.spec["n"]
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        if len(grams) < 2:
            return 1.0
        return len(set(grams)) / len(grams)


# --- the judge -------------------------------------------------------------------------------------------------

JUDGE_SYSTEM = ("You are a strict, fair grader. You grade one response to a prompt against a rubric. Reply with only "
                "a JSON object of the form {\"score\": <a number from 0 to 10>, \"reason\": \"<one short sentence>\"}.")
JUDGE_SCHEMA = score_schema(reason=True)


@dataclass
class JudgeStats:
    """What the judges cost: requests that left the machine, retries, failures, cache hits, tokens, money."""

    calls: int = 0  # requests sent (each counted once, whatever its retries)
    attempts: int = 0  # times a request was sent, retries included
    failures: int = 0  # judgements that produced no score (HTTP failures and unreadable answers)
    malformed: int = 0  # of those, answers that came back but held no readable score
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {"judge_calls": self.calls, "judge_attempts": self.attempts, "judge_failures": self.failures,
                "judge_malformed": self.malformed, "judge_cache_hits": self.cache_hits,
                "judge_prompt_tokens": self.prompt_tokens, "judge_completion_tokens": self.completion_tokens,
                "judge_cost": round(self.cost, 6)}


class JudgeScorer(Scorer):
    """Grades completions with a chat model. One request per distinct (rubric, prompt, completion), sent
    concurrently through the client (its retries and backoff on 429 and 5xx apply); answers are cached for the
    life of the scorer, so the identical completions GRPO often samples cost one request."""

    def __init__(self, spec: dict, client, stats: JudgeStats, on_call: Callable | None = None,
                 judge: StructuredJudge | None = None):
        super().__init__(spec)
        self.client = client
        # What the endpoint takes (structured output or not), shared by the judges of one client: learnt once.
        self.judge = judge or StructuredJudge()
        self.stats = stats
        self.on_call = on_call
        self.cache: dict[str, float | None] = {}
        self.last_errors: list[str] = []

    def key(self, prompt: str, completion: str, reference: str) -> str:
        parts = [self.spec["rubric"], prompt, completion, reference if self.spec["include_reference"] else ""]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def messages(self, prompt: str, completion: str, reference: str) -> list[dict]:
        text = f"Rubric:\n{self.spec['rubric'].strip()}\n\nPrompt:\n{prompt.strip()}\n\n"
        if self.spec["include_reference"] and reference:
            text += f"Reference answer:\n{reference.strip()}\n\n"
        text += f"Response to grade:\n{completion.strip()}\n\nGrade the response from 0 to 10."
        return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": text}]

    def score(self, prompts, completions, columns):
        references = [str(v) if v is not None else "" for v in columns.get("answer", [None] * len(completions))]
        keys = [self.key(p, c, r) for p, c, r in zip(prompts, completions, references)]
        todo: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key in self.cache:
                with self.stats.lock:
                    self.stats.cache_hits += 1
            elif key in todo:
                with self.stats.lock:
                    self.stats.cache_hits += 1  # the same completion twice in a batch: asked once
            else:
                todo[key] = index
        if todo:
            conversations = [self.messages(prompts[i], completions[i], references[i]) for i in todo.values()]
            results = self.judge.ask(self._send, conversations, name="judgement", schema=JUDGE_SCHEMA)
            self.last_errors = []
            for key, result in zip(todo, results):
                # The judge's 0-10 score as a reward from 0 to 1; None when the answer holds no readable score.
                score = fraction(parse_score(result.text)) if result.ok else None
                if score is None:
                    with self.stats.lock:
                        self.stats.failures += 1
                        self.stats.malformed += result.ok
                    self.last_errors.append(result.error or f"unreadable judgement: {(result.text or '')[:80]!r}")
                    # A failure is not cached: the same completion may be judged again later.
                    continue
                self.cache[key] = score
        failed = 0.0 if self.spec["on_failure"] == "zero" else None
        return [self.cache.get(key, failed) for key in keys]

    def _send(self, conversations, **params):
        return self.client.complete_many(conversations, on_result=self._on_result, temperature=0,
                                         max_tokens=self.spec["max_tokens"], **params)

    def _on_result(self, result) -> None:
        with self.stats.lock:
            if result.attempts:
                self.stats.calls += 1
                self.stats.attempts += result.attempts
            usage = result.usage or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
            self.stats.prompt_tokens += prompt_tokens
            self.stats.completion_tokens += completion_tokens
            self.stats.cost += (prompt_tokens * self.spec["cost_per_million_input"]
                                + completion_tokens * self.spec["cost_per_million_output"]) / 1e6
        if self.on_call is not None:
            self.on_call(result, self.spec)


SCORERS = {"format": FormatScorer, "answer_match": AnswerMatchScorer, "exact": MatchScorer, "contains": MatchScorer,
           "length": LengthScorer, "repetition": RepetitionScorer}


def build_scorers(specs: list[dict], *, judge_client: Callable | None = None, on_call: Callable | None = None,
                  stats: JudgeStats | None = None) -> list[Scorer]:
    """Scorers for validated-or-raw specs. `judge_client(provider)` returns the workers.common.llm.ChatClient a judge
    with that provider choice uses; `on_call(result, spec)` is called once per judge request (an audit log).
    Raises ReadableError for bad specs, or a judge without an endpoint."""
    specs = validate_specs(specs)
    stats = stats if stats is not None else JudgeStats()
    scorers: list[Scorer] = []
    judges: dict[int, StructuredJudge] = {}  # one per client: what its endpoint takes is learnt once
    for spec in specs:
        if spec["type"] == "judge":
            if judge_client is None:
                raise ReadableError(f"The reward function '{spec['name']}' is an LLM judge, but no chat endpoint "
                                    "was given to it.")
            client = judge_client(spec["provider"])
            judge = judges.setdefault(id(client), StructuredJudge())
            scorers.append(JudgeScorer(spec, client, stats, on_call, judge))
        else:
            scorers.append(SCORERS[spec["type"]](spec))
    return scorers


def judge_stats(scorers: list[Scorer]) -> JudgeStats | None:
    for scorer in scorers:
        if isinstance(scorer, JudgeScorer):
            return scorer.stats
    return None


def weighted_total(scorers: list[Scorer], scores: dict[str, float | None]) -> float:
    """The reward GRPO optimises: the weighted sum of the scores, skipped (None) ones left out, as TRL does."""
    return sum(s.weight * scores[s.name] for s in scorers if scores.get(s.name) is not None)


def score_samples(scorers: list[Scorer], samples: list[dict]) -> list[dict]:
    """Score samples {prompt, completion, answer?, ...columns} with every function, for the preview. Returns, per
    sample, {"scores": {name: score or None}, "total": weighted sum}."""
    prompts = [str(s.get("prompt") or "") for s in samples]
    completions = [str(s.get("completion") or "") for s in samples]
    column_names = {k for s in samples for k in s if k not in ("prompt", "completion")}
    columns = {k: [s.get(k) for s in samples] for k in column_names}
    columns.setdefault("answer", [None] * len(samples))
    per_function = {scorer.name: scorer.score(prompts, completions, columns) for scorer in scorers}
    rows = []
    for index in range(len(samples)):
        scores = {name: values[index] for name, values in per_function.items()}
        rows.append({"scores": scores, "total": round(weighted_total(scorers, scores), 4)})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# TRL
# ---------------------------------------------------------------------------------------------------------------

class SampleRecorder:
    """Keeps the latest batch GRPO scored: prompts, completions and every function's scores, so the engine can
    show a rolling sample of completions with their scores. TRL calls the functions one after another on the
    same batch; a batch with other completions starts a new record."""

    def __init__(self):
        self.lock = threading.Lock()
        self.batch: dict = {}

    def add(self, name: str, prompts: list[str], completions: list[str], scores: list, columns: dict) -> None:
        with self.lock:
            if self.batch.get("completions") != completions:
                self.batch = {"prompts": prompts, "completions": completions, "scores": {},
                              "answers": columns.get("answer")}
            self.batch["scores"][name] = list(scores)

    def latest(self, limit: int = 4, max_chars: int = 800) -> list[dict]:
        """Up to `limit` samples of the latest batch: the best and worst scored first, then others, so that what is
        being rewarded shows at a glance."""
        with self.lock:
            batch = dict(self.batch)
        completions = batch.get("completions") or []
        if not completions:
            return []
        scores = batch["scores"]

        def total(i):
            return sum(v[i] for v in scores.values() if v[i] is not None)

        order = sorted(range(len(completions)), key=total, reverse=True)
        picked = list(dict.fromkeys([order[0], order[-1], *order[1:-1]]))[:limit]
        answers = batch.get("answers") or [None] * len(completions)
        return [{"prompt": batch["prompts"][i][:max_chars], "completion": completions[i][:max_chars],
                 "answer": None if answers[i] is None else str(answers[i])[:200],
                 "scores": {name: (None if v[i] is None else round(float(v[i]), 4)) for name, v in scores.items()}}
                for i in picked]


def trl_reward_functions(scorers: list[Scorer], recorder: SampleRecorder | None = None) -> tuple[list, list[float]]:
    """(reward functions, weights) for GRPOTrainer(reward_funcs=...) and GRPOConfig(reward_weights=...). Each
    function is named after its spec (TRL logs rewards/<name>/mean and /std) and takes dataset columns as keyword
    arguments (lists, one value per completion)."""
    functions = []
    for scorer in scorers:
        def reward(prompts, completions, _scorer=scorer, **kwargs):
            texts = [completion_text(c) for c in completions]
            questions = [prompt_text(p) for p in prompts]
            columns = {k: v for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(texts)
                       and k not in ("completion_ids",)}
            scores = _scorer.score(questions, texts, columns)
            if recorder is not None:
                recorder.add(_scorer.name, questions, texts, scores, columns)
            return scores

        reward.__name__ = reward.__qualname__ = scorer.name
        functions.append(reward)
    return functions, [scorer.weight for scorer in scorers]
