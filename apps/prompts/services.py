"""Writes of the prompts app: prompt-optimization runs (workers.engine.promptopt run by a job, apps.prompts.jobs) and
saved prompts.

    run = optimized_prompt_create(owner=user, source="version", version=v, task_model="default",
                                  reflection_model="default", metric="token_f1", budget=200, seed_prompt="...")
    optimized_prompt_execute(run=run, reporter=reporter)     # apps.prompts.jobs, in the worker (workers.tasks)
    saved_prompt_from_run(run=run, name="Short answers")     # keep the best prompt for reuse

A model choice is "default" (the site's endpoint), the code of one of the owner's providers, or "local" with a local
model (any choice apps.training.model_choices takes: an installed real model, a Hub id, a model folder of the server
or one of the owner's tuned models); a run is queued on `gpu` when one of its models is local, else on `default`."""
from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.options import options_clean
from apps.core.services import job_create
from apps.datasets.models import DatasetVersion, VersionExample
from apps.prompts.models import OptimizedPrompt, SavedPrompt
from workers.common.errors import ReadableError
from workers.common.evaluation import load_gsm8k
from workers.common.options import Float, Int
from workers.common.promptopt import LIMITS, MAX_PROMPT_CHARS, PromptOptConfig

logger = logging.getLogger(__name__)

LOCAL = OptimizedPrompt.LOCAL
# How many examples a run reads at most, unless the user says otherwise: validation examples are scored once per kept
# candidate, so a small validation set keeps the budget for exploring.
DEFAULTS = {"minibatch_size": 3, "train_limit": 200, "val_limit": 20, "max_tokens": 256, "temperature": 0.0, "seed": 0}
SETTING_LIMITS = {"minibatch_size": LIMITS["minibatch_size"], "train_limit": (1, 100_000), "val_limit": (1, 10_000),
                  "max_tokens": LIMITS["max_tokens"], "seed": (0, 2 ** 31 - 1)}
# The settings as one schema (workers.common.options), which prompt_settings_clean checks; the temperature's bounds
# are the engine's (workers.common.promptopt.PromptOptConfig.validate), and so is how messages name them.
SETTINGS = {name: Float(DEFAULTS[name], 0.0, 2.0, label="the temperature") if name == "temperature"
            else Int(DEFAULTS[name], *SETTING_LIMITS[name], label=f"the {name.replace('_', ' ')}") for name in DEFAULTS}
VALIDATION_SHARE = 0.2  # of a version without held-out examples, taken from its training examples


# ---------------------------------------------------------------------------------------------------------------
# Checking what users give
# ---------------------------------------------------------------------------------------------------------------

def prompt_settings_clean(raw: dict | None) -> dict:
    """The run's settings (SETTINGS) with defaults filled in; ValidationError with a readable message otherwise."""
    return options_clean(SETTINGS, raw)


def prompt_model_clean(*, owner, choice: str, local_model: str = "") -> tuple[str, str, str]:
    """(provider choice, local model, label) for a task or reflection model; an empty local model is the default
    model. Http404 for a stranger's provider or tuned model."""
    from apps.providers.selectors import (
        provider_credential_get_for_user,
        site_default_endpoint,
    )
    from apps.providers.services import SITE_DEFAULT, provider_choice_validate
    from apps.training.model_choices import default_model_choice, model_choice_clean, model_choice_label

    choice = str(choice or "").strip()
    if choice == LOCAL:
        model = model_choice_clean(user=owner, choice=local_model or default_model_choice())
        return LOCAL, model, f"{model_choice_label(model)} (local)"
    choice = provider_choice_validate(owner=owner, provider=choice)
    if choice == SITE_DEFAULT:
        return choice, "", f"the site's endpoint ({site_default_endpoint()['model']})"
    return choice, "", str(provider_credential_get_for_user(user=owner, code=choice))


def _version_rows(version: DatasetVersion, split: str) -> list[dict]:
    rows = version.examples.filter(split=split).order_by("position").values_list("question", "answer")
    return [{"question": q, "answer": a} for q, a in rows]


def prompt_examples(*, source: str, version: DatasetVersion | None, settings: dict) -> tuple[list[dict], list[dict]]:
    """(training examples, validation examples) of a source, cut to the settings' limits. A version's held-out split
    validates; a version that held nothing out gives the last fifth of its training examples instead."""
    if source == OptimizedPrompt.Source.GSM8K:
        train, val = load_gsm8k("train"), load_gsm8k("test")
    elif source == OptimizedPrompt.Source.VERSION:
        if version is None:
            raise ValidationError("Choose one of your frozen dataset versions.")
        train, val = _version_rows(version, VersionExample.Split.TRAIN), _version_rows(version, VersionExample.Split.HELDOUT)
        if not val:
            if len(train) < 2:
                raise ValidationError("This dataset version needs at least two examples: some to learn from and some "
                                      "to validate on.")
            cut = len(train) - max(1, int(len(train) * VALIDATION_SHARE))
            train, val = train[:cut], train[cut:]
    else:
        raise ValidationError(f"Unknown source '{source}'.")
    train, val = train[:settings["train_limit"]], val[:settings["val_limit"]]
    return ([{"question": r["question"], "answer": r["answer"]} for r in train],
            [{"question": r["question"], "answer": r["answer"]} for r in val])


def _config(*, run: OptimizedPrompt, train: list[dict], val: list[dict]) -> PromptOptConfig:
    values = run.settings
    return PromptOptConfig(train=train, val=val, seed_prompt=run.seed_prompt, metric=run.metric, budget=run.budget,
                           minibatch_size=values["minibatch_size"], max_tokens=values["max_tokens"],
                           temperature=values["temperature"], seed=values["seed"])


# ---------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------

def optimized_prompt_create(*, owner, task_model: str, reflection_model: str, budget, metric: str = "token_f1",
                            source: str = OptimizedPrompt.Source.VERSION, version: DatasetVersion | None = None,
                            seed_prompt: str = "", task_local_model: str = "", reflection_local_model: str = "",
                            settings: dict | None = None, name: str = "") -> OptimizedPrompt:
    """Create a prompt-optimization run and queue its job (queue `gpu` when a model is local, else `default`).
    Side effects: one OptimizedPrompt and one Job row. Raises ValidationError for bad settings, a budget too small
    for the validation set, or a source without examples; Http404 for a stranger's provider."""
    if version is not None and version.owner_id != owner.pk:
        raise ValidationError("Choose one of your own dataset versions.")
    if metric not in OptimizedPrompt.Metric.values:
        raise ValidationError(f"Unknown metric '{metric}'. Choose one of: {', '.join(OptimizedPrompt.Metric.values)}.")
    try:
        budget = int(budget)
    except (TypeError, ValueError):
        raise ValidationError("The budget must be a whole number of model calls.")
    seed_prompt = (seed_prompt or "").strip()
    if len(seed_prompt) > MAX_PROMPT_CHARS:
        raise ValidationError(f"The seed prompt is longer than {MAX_PROMPT_CHARS} characters.")
    values = prompt_settings_clean(settings)
    task = prompt_model_clean(owner=owner, choice=task_model, local_model=task_local_model)
    reflection = prompt_model_clean(owner=owner, choice=reflection_model, local_model=reflection_local_model)
    version = version if source == OptimizedPrompt.Source.VERSION else None
    train, val = prompt_examples(source=source, version=version, settings=values)
    run = OptimizedPrompt(owner=owner, source=source, version=version, metric=metric, budget=budget,
                          seed_prompt=seed_prompt, settings=values, train_count=len(train), val_count=len(val),
                          task_provider=task[0], task_local_model=task[1], task_label=task[2][:300],
                          reflection_provider=reflection[0], reflection_local_model=reflection[1],
                          reflection_label=reflection[2][:300])
    try:
        _config(run=run, train=train, val=val).validate()
    except ReadableError as exc:
        raise ValidationError(str(exc))
    queue = "gpu" if LOCAL in (task[0], reflection[0]) else "default"
    with transaction.atomic():
        run.name = (name or "").strip()[:200] or optimized_prompt_default_name(owner=owner, run=run)
        run.save()
        run.job = job_create(owner=owner, kind=Job.Kind.OPTIMIZE_PROMPT, queue=queue,
                             title=f"Prompt optimization: {run.name}"[:200], config={"optimized_prompt": run.pk})
        run.save(update_fields=["job"])
    return run


def optimized_prompt_default_name(*, owner, run: OptimizedPrompt) -> str:
    """The name of the owner's next prompt optimization on the run's examples, numbered among the owner's runs on
    them (apps.training.names): "Lumen Valley v2 · run 2 · prompt for SmolLM2-135M-Instruct · 5 Dec"."""
    from apps.training.names import model_short_name, run_name

    subject = "GSM8K" if run.source == OptimizedPrompt.Source.GSM8K else str(run.version)
    number = OptimizedPrompt.objects.filter(owner=owner, source=run.source, version=run.version).count() + 1
    model = model_short_name(run.task_local_model) if run.task_provider == LOCAL else run.task_label
    return run_name(subject=subject, number=number, what=f"prompt for {model}")


# ---------------------------------------------------------------------------------------------------------------
# Saved prompts
# ---------------------------------------------------------------------------------------------------------------

def saved_prompt_create(*, owner, name: str, text: str, source_run: OptimizedPrompt | None = None,
                        score: float | None = None) -> SavedPrompt:
    """Keep a system prompt for reuse. Side effect: one SavedPrompt row. ValidationError for an empty or long one."""
    name, text = (name or "").strip(), (text or "").strip()
    if not name:
        raise ValidationError("Give the prompt a name.")
    if not text:
        raise ValidationError("The prompt is empty.")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValidationError(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.")
    return SavedPrompt.objects.create(owner=owner, name=name[:200], text=text, source_run=source_run, score=score)


def saved_prompt_from_run(*, run: OptimizedPrompt, name: str = "", index: int | None = None) -> SavedPrompt:
    """Save a run's best prompt (or its candidate `index`). ValidationError before the run has finished or for an
    empty prompt (a seed left empty has nothing to save)."""
    if index is None:
        if not run.job or run.job.status != Job.Status.SUCCEEDED:
            raise ValidationError("The run has not finished yet; its best prompt is known once it has.")
        text, score = run.best_prompt, run.result.get("best_val_score")
    else:
        candidate = run.candidates.filter(index=index).first()
        if candidate is None:
            raise ValidationError(f"The run has no candidate #{index}.")
        text, score = candidate.prompt, candidate.val_score
    if not (text or "").strip():
        raise ValidationError("This prompt is empty: the seed without a system prompt stayed the best. Nothing to save.")
    return saved_prompt_create(owner=run.owner, name=name or f"Best prompt of {run.name}"[:200], text=text,
                               source_run=run, score=score)


def saved_prompt_update(*, prompt: SavedPrompt, name: str | None = None, text: str | None = None) -> SavedPrompt:
    if name is not None:
        if not name.strip():
            raise ValidationError("Give the prompt a name.")
        prompt.name = name.strip()[:200]
    if text is not None:
        if not text.strip() or len(text) > MAX_PROMPT_CHARS:
            raise ValidationError(f"The prompt must have between 1 and {MAX_PROMPT_CHARS} characters.")
        prompt.text = text.strip()
    prompt.save()
    return prompt


def saved_prompt_delete(*, prompt: SavedPrompt) -> None:
    prompt.delete()
