"""Writes of the reinforcement-learning app: GRPO runs, reward previews and the reference recipe. The worker side
(running them and recording what they made) is apps.rl.jobs."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import PurePosixPath

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse

from apps.core.models import Job
from apps.core.options import options_clean
from apps.core.services import job_create
from apps.datasets.models import DatasetVersion, VersionExample
from apps.providers.client import SITE_DEFAULT, ProviderClient, provider_resolve
from apps.providers.models import ExternalCallAudit
from apps.providers.services import provider_choice_validate
from apps.rl.models import GrpoRun, RewardPreview
from apps.training.artifacts import artifact_download_response, artifact_size
from apps.training.model_choices import default_model_choice, model_choice_clean, model_choice_label
from apps.training.names import METHODS, model_short_name, run_name
from apps.training.services import BACKENDS
from workers.common.errors import ReadableError
from workers.common.rl import GRPO_LIMITS, RECIPE_REWARDS, RECIPE_SETTINGS, TAGS_TEMPLATE, GRPOTrainConfig
from workers.common.evaluation import load_gsm8k
from workers.common.options import Choice, Float, Int, Text
from workers.common.rewards import build_scorers, judge_providers, judge_stats, score_samples, validate_specs


GPU_QUEUE = "gpu"
TEXT_SETTINGS = ("system_prompt", "warmup_template")
# Settings of the service, not the engine: how many prompts to use (0: all) and, for the reference recipe, how many
# GSM8K test problems the benchmarks ask and how long their answers may be.
SERVICE_LIMITS = {"prompt_limit": (0, 1_000_000), "benchmark_limit": (1, 1319), "benchmark_max_new_tokens": (16, 4096)}
NUMBER_LIMITS = {**GRPO_LIMITS, **SERVICE_LIMITS}
_CONFIG_FIELDS = {f.name: f.default for f in fields(GRPOTrainConfig)}
# Runs save a checkpoint every 50 steps, so a run that failed or was cancelled continues when retried.
DEFAULTS = {**{name: _CONFIG_FIELDS[name] for name in GRPO_LIMITS}, "system_prompt": "", "warmup_template": TAGS_TEMPLATE,
            "checkpoint_every": 50, "prompt_limit": 0, "backend": "auto"}
# The settings as one schema (workers.common.options), which grpo_settings checks. The benchmarks' defaults are the
# ones the worker uses for a run that does not say (apps.rl.jobs.grpo_recipe_benchmarks).
_NUMBER_DEFAULTS = {"benchmark_limit": RECIPE_SETTINGS["benchmark_limit"], "benchmark_max_new_tokens": 512, **DEFAULTS}
_NUMBER_KINDS = {name: Float if isinstance(_CONFIG_FIELDS.get(name, 0), float) else Int for name in NUMBER_LIMITS}
SETTINGS = {**{name: _NUMBER_KINDS[name](_NUMBER_DEFAULTS[name], low, high) for name, (low, high) in NUMBER_LIMITS.items()},
            **{name: Text(DEFAULTS[name], 4000, strip=False) for name in TEXT_SETTINGS},
            "backend": Choice(DEFAULTS["backend"], tuple(BACKENDS))}
MAX_PROMPTS = 100_000
MAX_PREVIEW_SAMPLES = 8
PREVIEW_JUDGE_TIMEOUT = 30.0  # the preview of pasted samples answers the person waiting on the page

RECIPE_MODEL = "google/gemma-3-1b-it"
RECIPE_RUBRIC = ("Give 10 when the reasoning is correct, clear and leads step by step to the final answer; 5 when it "
                 "has a small slip or skips steps; 0 when it is missing, wrong or unrelated to the problem.")
# The recipe's rewards and settings are workers.common.rl's, shared with bench/grpo_gsm8k_gpu.py.


# ---------------------------------------------------------------------------------------------------------------
# Checking what users give
# ---------------------------------------------------------------------------------------------------------------

def grpo_settings(raw: dict | None) -> dict:
    """User-chosen settings, typed and checked against SETTINGS (the engine's limits); readable ValidationError
    otherwise, also for a setting that is not one of them. Blank values take the defaults."""
    values = options_clean(SETTINGS, raw)
    if values["warmup_steps"] and "{answer}" not in values["warmup_template"]:
        raise ValidationError("The warm-up template must contain {answer}, where each reference answer goes.")
    return values


def grpo_rewards_clean(*, owner, rewards) -> list[dict]:
    """Reward specs checked by the engine's rules, with each judge's endpoint checked to be the site's default or
    one of the owner's providers. Raises ValidationError (Http404 for someone else's provider)."""
    if isinstance(rewards, str):
        try:
            rewards = json.loads(rewards or "[]")
        except ValueError:
            raise ValidationError("The reward functions are not valid JSON.")
    try:
        specs = validate_specs(rewards)
    except ReadableError as exc:
        raise ValidationError(str(exc))
    for spec in specs:
        if spec["type"] == "judge":
            spec["provider"] = provider_choice_validate(owner=owner, provider=spec["provider"])
    return specs


def _prompt_row(row: dict, where: str) -> dict:
    prompt = row.get("prompt", row.get("question"))
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError(f"{where} needs a 'prompt' (or 'question') with text.")
    clean = {"prompt": prompt}
    for name in ("answer", "solution", "system"):
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValidationError(f"{where}: '{name}' must be text or a number.")
        clean[name] = str(value)
    return clean


def grpo_prompts_read(*, file) -> list[dict]:
    """Prompts from an uploaded JSONL file: one object per line with `prompt` (or `question`), and optional
    `answer`, `solution` and `system`. Raises ValidationError naming the first bad line."""
    if file.size > django_settings.GARAGE_MAX_UPLOAD_BYTES:
        raise ValidationError(f"The file is larger than {django_settings.GARAGE_MAX_UPLOAD_BYTES // 2**20} MB.")
    file.seek(0)
    rows = []
    for number, raw in enumerate(file.read().splitlines(), 1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise ValidationError(f"Line {number} is not UTF-8 text.")
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ValidationError(f"Line {number} is not valid JSON; each line must be one JSON object.")
        if not isinstance(row, dict):
            raise ValidationError(f"Line {number} is not a JSON object.")
        rows.append(_prompt_row(row, f"Line {number}"))
        if len(rows) > MAX_PROMPTS:
            raise ValidationError(f"The file has more than {MAX_PROMPTS:,} prompts.")
    if not rows:
        raise ValidationError("The file has no prompts.")
    file.seek(0)
    return rows


def gsm8k_prompts() -> list[dict]:
    return [{"prompt": p["question"], "answer": p["answer"], "solution": p["solution"]} for p in load_gsm8k("train")]


def version_prompts(version: DatasetVersion) -> list[dict]:
    """A frozen version's training questions as prompts, their answers as references (held-out ones stay out)."""
    rows = version.examples.filter(split=VersionExample.Split.TRAIN).values_list("question", "answer", "system")
    return [{"prompt": q, "answer": a, **({"system": s} if s else {})} for q, a, s in rows]


def grpo_source_prompts(*, source: str, version: DatasetVersion | None = None, rows: list[dict] | None = None) -> list[dict]:
    """The prompts a source gives; ValidationError when the source lacks what it needs."""
    if source == GrpoRun.Source.GSM8K:
        return gsm8k_prompts()
    if source == GrpoRun.Source.VERSION:
        if version is None:
            raise ValidationError("Choose one of your dataset versions.")
        prompts = version_prompts(version)
        if not prompts:
            raise ValidationError("This dataset version has no training examples.")
        return prompts
    if source == GrpoRun.Source.UPLOAD:
        if not rows:
            raise ValidationError("Upload a JSONL file of prompts.")
        return rows
    raise ValidationError(f"Unknown prompt source '{source}'.")


# ---------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------

def grpo_run_create(*, owner, rewards, source: str = GrpoRun.Source.GSM8K, version: DatasetVersion | None = None,
                    prompts_file=None, base_model: str = "", method: str = GrpoRun.Method.LORA,
                    settings: dict | None = None, name: str = "", recipe: str = "") -> GrpoRun:
    """Create a GRPO run and queue its job on the `gpu` queue. `base_model` is any model choice
    (apps.training.model_choices: an installed model, a Hub id, a model folder of the server, or one of the owner's
    tuned models as "finetune:<code>"); empty: the server's default model. Side effects: one GrpoRun and one Job row;
    an uploaded prompts file is stored. Raises ValidationError for bad rewards, settings, model or prompts (Http404
    for someone else's tuned model)."""
    if method not in GrpoRun.Method.values:
        raise ValidationError(f"Unknown method '{method}'. Choose one of: {', '.join(GrpoRun.Method.values)}.")
    if version is not None and version.owner_id != owner.pk:
        raise ValidationError("Choose one of your own dataset versions.")
    base_model = model_choice_clean(user=owner, choice=base_model or default_model_choice())
    specs = grpo_rewards_clean(owner=owner, rewards=rewards)
    values = grpo_settings(settings)
    version = version if source == GrpoRun.Source.VERSION else None
    rows = grpo_prompts_read(file=prompts_file) if source == GrpoRun.Source.UPLOAD and prompts_file else None
    prompts = grpo_source_prompts(source=source, version=version, rows=rows)
    if values["prompt_limit"]:
        prompts = prompts[:values["prompt_limit"]]
    if values["warmup_steps"] and not any(str(p.get("answer") or "").strip() for p in prompts):
        raise ValidationError("The warm-up needs prompts with reference answers, and none has one. Set the warm-up "
                              "steps to 0, or use prompts with answers.")
    filename = str(getattr(prompts_file, "name", "") or "prompts.jsonl")[:255] if source == GrpoRun.Source.UPLOAD else ""
    with transaction.atomic():
        name = (name or "").strip()[:200] or grpo_default_name(owner=owner, source=source, version=version,
                                                                filename=filename, base_model=base_model,
                                                                method=method, recipe=recipe)
        run = GrpoRun(owner=owner, name=name, base_model=base_model, method=method, source=source,
                      version=version, rewards=specs, settings=values, prompt_count=len(prompts), recipe=recipe,
                      answer_count=sum(1 for p in prompts if str(p.get("answer") or "").strip()))
        if source == GrpoRun.Source.UPLOAD:
            run.prompts_filename = filename
            run.prompts_file.save(filename, prompts_file, save=False)
        run.save()
        run.job = job_create(owner=owner, kind=Job.Kind.GRPO, queue=GPU_QUEUE, title=f"GRPO: {name}"[:200],
                             config={"grpo_run": run.pk})
        run.save(update_fields=["job"])
    return run


def grpo_default_name(*, owner, source: str, version: DatasetVersion | None, filename: str, base_model: str,
                      method: str, recipe: str) -> str:
    """The name of the owner's next GRPO run on these prompts, numbered among the owner's runs on the same prompts
    (apps.training.names): "GSM8K · run 2 · gemma-3-1b-it LoRA GRPO · 5 Dec"."""
    runs = GrpoRun.objects.filter(owner=owner, source=source, recipe=recipe, version=version)
    if recipe:
        subject = "GSM8K reference recipe"
    elif source == GrpoRun.Source.VERSION:
        subject = str(version)
    elif source == GrpoRun.Source.UPLOAD:
        runs, subject = runs.filter(prompts_filename=filename), filename
    else:
        subject = "GSM8K"
    what = f"{model_short_name(base_model)} {METHODS.get(method, method)} GRPO"
    return run_name(subject=subject, number=runs.count() + 1, what=what)


def recipe_model() -> str:
    """The recipe's model: Gemma 3 1B Instruct where this server can run it, else the server's default model (the
    recipe then shows its method, not its published numbers)."""
    from workers.common.catalogue import CATALOGUE

    entry = CATALOGUE.get(RECIPE_MODEL)
    return RECIPE_MODEL if entry is not None and entry.available else default_model_choice()


def grpo_recipe_create(*, owner, judge: bool = False, provider: str = SITE_DEFAULT, rubric: str = "",
                       base_model: str = "", settings: dict | None = None, name: str = "") -> GrpoRun:
    """The reference recipe in one call: Gemma 3 1B Instruct (empty `base_model`: recipe_model()) on GSM8K with a
    format and a correctness reward (and optionally an LLM judge of the reasoning); when it finishes, GSM8K
    benchmarks of the base and the tuned model are queued. `settings` override the recipe's (tests use a tiny model
    and a few steps)."""
    base_model = model_choice_clean(user=owner, choice=base_model or recipe_model())
    rewards = [dict(spec) for spec in RECIPE_REWARDS]
    if judge:
        rewards.append({"type": "judge", "name": "judge", "weight": 0.5, "rubric": rubric or RECIPE_RUBRIC,
                        "provider": provider or SITE_DEFAULT, "include_reference": True})
    return grpo_run_create(owner=owner, rewards=rewards, source=GrpoRun.Source.GSM8K, base_model=base_model,
                           settings={**RECIPE_SETTINGS, **(settings or {})}, recipe=GrpoRun.RECIPE_GSM8K, name=name)


class JudgeEndpoints:
    """The judges' endpoints, resolved (keys decrypted) in the worker right before use, one client each, and an
    audit row for every request that leaves the machine (apps.providers.client). The reward functions take `client`
    (a ChatClient per provider choice) and `on_call` (the audit callback)."""

    def __init__(self, *, owner, specs: list[dict], job=None):
        self.owner, self.job = owner, job
        self.endpoints = {p: provider_resolve(owner=owner, provider=p) for p in judge_providers(specs)}
        self.clients: dict[str, ProviderClient] = {}

    def _judge(self, provider: str, **limits) -> ProviderClient:
        if provider not in self.clients:
            self.clients[provider] = ProviderClient(owner=self.owner, endpoint=self.endpoints[provider],
                                                    purpose=ExternalCallAudit.Purpose.JUDGE, job=self.job, **limits)
        return self.clients[provider]

    def client(self, provider: str, **limits):
        """The ChatClient of a provider choice; `limits` (timeout, max_retries) apply when it is first made."""
        return self._judge(provider, **limits).chat

    def on_call(self, result, spec) -> None:
        self._judge(spec["provider"]).record(result)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def grpo_run_has_files(*, run: GrpoRun) -> bool:
    """Whether the run's zip (its adapter or model) can be downloaded: where the web finds it, the bucket or the
    local folder (apps.training.artifacts)."""
    return bool(run.artifact) and artifact_size(relative=run.artifact) is not None


def grpo_run_download(*, run: GrpoRun, filename: str = "") -> HttpResponse:
    """The download of the run's zip for its owner (the caller checked ownership), named `filename` (default: the
    zip's own name). Http404 when there is none yet."""
    return artifact_download_response(relative=run.artifact, filename=filename or PurePosixPath(run.artifact).name,
                                      missing="This run has no files to download yet.")


# ---------------------------------------------------------------------------------------------------------------
# Previews
# ---------------------------------------------------------------------------------------------------------------

def _preview_samples(samples) -> list[dict]:
    if not isinstance(samples, list) or not samples:
        raise ValidationError("Give at least one sample completion to score.")
    if len(samples) > MAX_PREVIEW_SAMPLES:
        raise ValidationError(f"Preview at most {MAX_PREVIEW_SAMPLES} samples at a time.")
    clean = []
    for index, sample in enumerate(samples, 1):
        if not isinstance(sample, dict):
            raise ValidationError(f"Sample {index} must be an object with a prompt and a completion.")
        row = {}
        for name in ("prompt", "completion", "answer"):
            value = sample.get(name)
            if value is None:
                value = ""
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or len(str(value)) > 20_000:
                raise ValidationError(f"Sample {index}: '{name}' must be text of at most 20,000 characters.")
            row[name] = str(value)
        clean.append(row)
    return clean


def _score(*, owner, specs: list[dict], samples: list[dict], job=None, timeout: float | None = None) -> tuple[list, dict]:
    judges = JudgeEndpoints(owner=owner, specs=specs, job=job)
    kwargs = {"timeout": timeout, "max_retries": 1} if timeout else {}
    try:
        scorers = build_scorers(specs, judge_client=lambda provider: judges.client(provider, **kwargs),
                                on_call=judges.on_call)
        rows = score_samples(scorers, samples)
    finally:
        judges.close()
    stats = judge_stats(scorers)
    return rows, (stats.as_dict() if stats is not None else {})


def reward_preview_create(*, owner, rewards, samples: list[dict] | None = None, base_model: str = "",
                          prompts: list[dict] | None = None, count: int = 4, temperature: float = 1.0,
                          max_new_tokens: int = 128, system_prompt: str = "") -> RewardPreview:
    """Score the reward functions on sample completions. Pasted samples (`samples`: prompt, completion, answer) are
    scored at once (a judge is asked right here, with one short try). With `base_model`, the model first writes one
    completion for each of the first `count` `prompts` in a short job on the `gpu` queue, which then scores them.
    Side effects: one RewardPreview row (and a Job when generating); judge requests with audit rows."""
    specs = grpo_rewards_clean(owner=owner, rewards=rewards)
    if base_model:
        base_model = model_choice_clean(user=owner, choice=base_model)
        if not prompts:
            raise ValidationError("There are no prompts for the model to answer.")
        if not 1 <= int(count) <= MAX_PREVIEW_SAMPLES:
            raise ValidationError(f"Generate between 1 and {MAX_PREVIEW_SAMPLES} samples.")
        checked = grpo_settings({"temperature": temperature, "max_completion_length": max_new_tokens,
                                 "system_prompt": system_prompt})
        rows = _preview_samples([{"prompt": p["prompt"], "completion": "", "answer": p.get("answer") or ""}
                                 for p in prompts[:int(count)]])
        generation = {"temperature": checked["temperature"], "max_new_tokens": checked["max_completion_length"],
                      "system_prompt": checked["system_prompt"]}
        with transaction.atomic():
            preview = RewardPreview.objects.create(owner=owner, rewards=specs, samples=rows, base_model=base_model,
                                                   settings=generation)
            preview.job = job_create(owner=owner, kind=Job.Kind.GRPO, queue=GPU_QUEUE,
                                     title=f"Reward preview: {len(rows)} samples from {model_choice_label(base_model)}"[:200],
                                     config={"reward_preview": preview.pk})
            preview.save(update_fields=["job"])
        return preview
    rows = _preview_samples(samples)
    try:
        results, judge = _score(owner=owner, specs=specs, samples=rows, timeout=PREVIEW_JUDGE_TIMEOUT)
    except ReadableError as exc:
        raise ValidationError(str(exc))
    return RewardPreview.objects.create(owner=owner, rewards=specs, samples=rows, results=results, judge=judge)
