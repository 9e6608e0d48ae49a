"""What a prompt optimization takes, shared by the web and the worker: its metrics, limits and the config dataclass
with its checks. workers.engine.promptopt runs the optimizer on a PromptOptConfig; the web process reads the names and
limits from here and checks a run's settings before any job exists. Light: no Django, no engine."""
from __future__ import annotations

from dataclasses import dataclass

from workers.common.errors import ReadableError

METRICS = {
    "exact_match": "Exact match (case and spacing ignored)",
    "token_f1": "Token F1 (word overlap with the reference)",
    "numeric": "Numeric answer match (the final number, as in the GSM8K benchmark)",
}
LIMITS = {"budget": (3, 100_000), "minibatch_size": (1, 64), "max_tokens": (1, 8192), "max_retries": (0, 5)}
MAX_PROMPT_CHARS = 8000


@dataclass
class PromptOptConfig:
    """What to optimize against. Examples are dicts with `question` and `answer` (the reference)."""

    train: list[dict]
    val: list[dict]
    seed_prompt: str = ""
    metric: str = "token_f1"
    budget: int = 100  # model calls in all, task and reflection, retries included
    minibatch_size: int = 3
    max_tokens: int = 256  # of each task answer
    temperature: float = 0.0
    reflection_max_tokens: int = 1024
    max_retries: int = 1  # resends of a request refused with 429/5xx or that got no answer, budget allowing
    retry_wait: float = 1.0  # seconds before the first resend, doubled for each next one
    seed: int = 0

    def validate(self) -> None:
        if self.metric not in METRICS:
            raise ReadableError(f"Unknown metric '{self.metric}'. Choose one of: {', '.join(METRICS)}.")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ReadableError(f"The {name.replace('_', ' ')} must be a whole number between {low} and {high}.")
        if not 0.0 <= float(self.temperature) <= 2.0:
            raise ReadableError("The temperature must be between 0 and 2.")
        if len(self.seed_prompt or "") > MAX_PROMPT_CHARS:
            raise ReadableError(f"The seed prompt is longer than {MAX_PROMPT_CHARS} characters.")
        for label, rows in (("training", self.train), ("validation", self.val)):
            if not rows:
                raise ReadableError(f"The {label} set is empty: prompt optimization needs examples in both the "
                                    "training and the validation set.")
            for i, row in enumerate(rows):
                if not str(row.get("question") or "").strip():
                    raise ReadableError(f"Example {i + 1} of the {label} set has no question.")
        # The seed's validation pass, then at least one round: a one-example minibatch for parent and child, one
        # reflection, and the validation pass of a child that wins.
        needed = 2 * len(self.val) + 3
        if self.budget < needed:
            raise ReadableError(
                f"A budget of {self.budget} model calls is too small: scoring the seed prompt on the {len(self.val)} "
                f"validation examples takes {len(self.val)} calls, and one round of proposing and checking a new "
                f"prompt needs up to {len(self.val) + 3} more. Give at least {needed} calls, or fewer validation "
                "examples.")
