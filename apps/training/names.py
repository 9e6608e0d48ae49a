"""Default names of runs (fine-tunes, GRPO runs, prompt optimizations): names that tell a person's runs apart in
every list, page and job title, such as "Lumen Valley v2 · run 3 · SmolLM2-135M-Instruct LoRA · 5 Dec".

A name says what the run learned from, its number among the person's runs on that data, the model and the method,
and the day it was started. People may rename a run afterwards; these are only the names it starts with."""
from __future__ import annotations

from datetime import date
from pathlib import PurePosixPath

from django.utils import dateformat, timezone

from apps.training.selectors import FINETUNE_PREFIX, model_choice_finetune_name

SEPARATOR = " · "
MAX_LENGTH = 200  # the name fields' length
MODEL_LENGTH = 60  # a tuned model's own name may be long: the rest of the name must still show
WHAT_LENGTH = 100  # the model and method part, so that the subject keeps some room
METHODS = {"lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tune"}


def model_short_name(choice: str) -> str:
    """A model as a name shows it: the last part of its id or folder ("SmolLM2-135M-Instruct", never a path), a
    tuned model ("finetune:<code>") by its own name."""
    from workers.common.catalogue import CATALOGUE
    from workers.common.catalogue import TINY_MODEL_ID

    choice = str(choice or "").strip()
    if choice.startswith(FINETUNE_PREFIX):
        name = model_choice_finetune_name(choice=choice)
    elif choice == TINY_MODEL_ID:
        name = "tiny test model"
    else:
        entry = CATALOGUE.get(choice)
        # An offline copy ("pypi/gemma-3-270m") is named as the model it copies.
        path = (entry.upstream_id or entry.id) if entry is not None else choice
        name = PurePosixPath(path.rstrip("/")).name or path
    return name if len(name) <= MODEL_LENGTH else name[:MODEL_LENGTH - 1] + "…"


def run_name(*, subject: str, number: int, what: str, day: date | None = None) -> str:
    """"{subject} · run {number} · {what} · {day}", at most MAX_LENGTH characters: a long subject is shortened, so
    that the run number, the model and the day always show."""
    what = what.strip() if len(what.strip()) <= WHAT_LENGTH else what.strip()[:WHAT_LENGTH - 1] + "…"
    tail = SEPARATOR.join([f"run {number}", what, dateformat.format(day or timezone.localdate(), "j M")])
    room = MAX_LENGTH - len(tail) - len(SEPARATOR)
    subject = subject.strip()
    if len(subject) > room:
        subject = subject[:room - 1] + "…"
    return f"{subject}{SEPARATOR}{tail}"


def finetune_default_name(*, owner, version, base_model: str, method: str) -> str:
    """The name of the owner's next fine-tune of `version`: numbered among the owner's fine-tunes of that version."""
    from apps.training.models import FineTune

    number = FineTune.objects.filter(owner=owner, version=version).count() + 1
    what = f"{model_short_name(base_model)} {METHODS.get(method, method)}"
    return run_name(subject=str(version), number=number, what=what)
