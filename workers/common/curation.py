"""What a curation run takes (workers.engine.data.curate runs it): the config dataclass and its checks. The web
process reads the defaults from here and validates a request with them before any job exists."""
from __future__ import annotations

from dataclasses import dataclass

from workers.common.errors import ReadableError
from workers.common.judge import rubric_text


@dataclass
class CurateConfig:
    """What to remove. Character limits of 0 mean "no limit". `judge_rubric`: the user's criteria for the judge
    (at most workers.common.judge.MAX_RUBRIC characters); empty for the default prompt."""

    dedupe_exact: bool = True
    dedupe_near: bool = True
    near_threshold: float = 0.8
    min_question_chars: int = 0
    max_question_chars: int = 0
    min_answer_chars: int = 0
    max_answer_chars: int = 0
    judge: bool = False
    judge_threshold: float = 7.0
    judge_batch_size: int = 5
    task_description: str = ""
    judge_rubric: str = ""

    def validate(self) -> None:
        if not 0.0 < self.near_threshold <= 1.0:
            raise ReadableError("The near-duplicate similarity must be between 0 and 1 (e.g. 0.8).")
        if not 1.0 <= self.judge_threshold <= 10.0:
            raise ReadableError("The judge threshold must be between 1 and 10.")
        if not 1 <= self.judge_batch_size <= 50:
            raise ReadableError("The judge batch size must be between 1 and 50.")
        for low, high, what in ((self.min_question_chars, self.max_question_chars, "question"),
                                (self.min_answer_chars, self.max_answer_chars, "answer")):
            if low < 0 or high < 0:
                raise ReadableError(f"The {what} length limits cannot be negative.")
            if high and low > high:
                raise ReadableError(f"The shortest {what} allowed ({low}) is longer than the longest ({high}).")
        self.judge_rubric = rubric_text(self.judge_rubric)
