"""The worker side of the reinforcement-learning app: the bodies of the GRPO job and of the reward-preview job (the
base model writes completions, the rewards score them), which run the engine (workers.engine.rl.grpo,
workers.engine.inference) and record what it made on the rows. workers.tasks.grpo calls these; the web's side
(creating runs and previews, checking what users give) is apps.rl.services."""
from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from apps.core.jobtypes import job_type
from apps.core.models import Job, JobEvent
from apps.core.services import job_event_add, without_nul
from apps.rl.models import GrpoRun, RewardPreview
from apps.rl.services import (
    _CONFIG_FIELDS,
    JudgeEndpoints,
    _score,
    grpo_prompts_read,
    gsm8k_prompts,
    version_prompts,
)
from apps.training.artifacts import artifact_upload
from apps.training.jobs import checkpoint_fetch, finetune_card_write, finetune_start_upload, model_choice_ref
from apps.training.models import FineTune
from apps.training.services import code_version
from apps.training.selectors import ARTIFACTS_PREFIX
from apps.training.model_choices import (
    FINETUNE_PREFIX,
    model_choice_finetune,
    model_choice_label,
    model_choice_parts,
)
from workers.common.catalogue import TINY_MODEL_ID
from workers.common.errors import Cancelled, ReadableError
from workers.common.rl import RECIPE_SETTINGS, GRPOTrainConfig
from workers.engine.inference import clear_cache, generate
from workers.engine.rl.grpo import grpo_train

logger = logging.getLogger(__name__)


def grpo_output_dir(run: GrpoRun) -> Path:
    return Path(django_settings.GARAGE_ARTIFACTS_DIR) / run.folder


def grpo_prompts(*, run: GrpoRun) -> list[dict]:
    """The run's prompts, read again in the worker from where they are kept."""
    if run.source == GrpoRun.Source.UPLOAD:
        if not run.prompts_file:
            raise ReadableError("The uploaded prompts file is missing.")
        try:
            with run.prompts_file.open("rb") as handle:  # the storage's file: it knows its size
                prompts = grpo_prompts_read(file=handle)
        except (OSError, ValidationError) as exc:
            raise ReadableError(" ".join(getattr(exc, "messages", [])) or "The uploaded prompts file cannot be read.")
    elif run.source == GrpoRun.Source.VERSION:
        if run.version is None:
            raise ReadableError("The dataset version of this run was deleted.")
        prompts = version_prompts(run.version)
    else:
        prompts = gsm8k_prompts()
    limit = run.settings.get("prompt_limit") or 0
    return prompts[:limit] if limit else prompts


def grpo_run_execute(*, run: GrpoRun, reporter) -> dict:
    """Run the GRPO engine for a run and record what it made. Resumes from the newest checkpoint when the job runs
    again, on this worker or, with a bucket, on any. Side effects: model files under the artifacts folder (and in
    the bucket when there is one); the run's metrics and artifact updated; judge requests (with audit rows); for the
    reference recipe, two GSM8K benchmark runs queued."""
    values = {k: v for k, v in run.settings.items() if k in _CONFIG_FIELDS and k not in ("prompts", "rewards")}
    # A tuned model starts from its own base with its adapter folded in; the engine resolves the base's name as every
    # feature does (the same catalogue function, the same model folder).
    base, adapter = model_choice_parts(user=run.owner, choice=run.base_model)
    checkpoint_fetch(run=grpo_output_dir(run), reporter=reporter)
    config = GRPOTrainConfig(base_model=base, base_adapter=adapter or "", output_dir=str(grpo_output_dir(run)),
                             prompts=grpo_prompts(run=run), rewards=run.rewards, method=run.method, resume=True,
                             save_merged=bool(run.recipe),
                             model_cache_dir=str(django_settings.GARAGE_MODELS_DIR), **values)
    judges = JudgeEndpoints(owner=run.owner, specs=run.rewards, job=run.job)
    try:
        result = grpo_train(config, reporter, judge_client=judges.client, on_judge_call=judges.on_call)
    finally:
        judges.close()
    keep = ("backend", "train_steps", "reward_first", "reward_last", "rewards", "kl_last", "completion_length_first",
            "completion_length_last", "judge", "samples", "warmup", "prompts", "prompts_left_out", "train_seconds",
            "seconds", "resumed_from_step", "lora_target_modules")
    run.metrics = without_nul({k: result[k] for k in keep})  # sampled text may hold NUL, which PostgreSQL refuses
    root = Path(django_settings.GARAGE_ARTIFACTS_DIR)
    run.artifact = str(Path(result["artifact"]).relative_to(root))
    run.metrics["policy_base"] = str(Path(result["policy_base"]).relative_to(root)) \
        if Path(result["policy_base"]).is_relative_to(root) else result["policy_base"]
    run.metrics["merged"] = str(Path(result["merged"]).relative_to(root)) if result["merged"] else None
    policy_base = Path(result["policy_base"])
    # After a warm-up the adapter applies to the warm-up's model, a folder of this run.
    adapter_base = str(policy_base.relative_to(root)) if result["warmup"] and policy_base.is_relative_to(root) else ""
    with transaction.atomic():
        run.save(update_fields=["metrics", "artifact"])
        model = grpo_model_register(run=run, adapter_base=adapter_base)
    finetune_card_write(finetune=model)  # beside the adapter (or model) and into its zip, as after a fine-tune
    # Besides the zip and the card, what another machine needs of the run's folder: the model training started from,
    # the warm-up's model the adapter applies to, the merged model the recipe's benchmark loads.
    finetune_start_upload(finetune=model)
    for relative in (adapter_base, run.metrics["merged"]):
        if relative:
            artifact_upload(path=root / relative)
    return {**{k: run.metrics[k] for k in ("backend", "train_steps", "reward_first", "reward_last", "judge")},
            "grpo_run": str(run.code), "model": str(model.code)}


def grpo_model_register(*, run: GrpoRun, adapter_base: str = "") -> FineTune:
    """Register the model a finished run made among the owner's tuned models (apps.training.models.FineTune), with
    its lineage: the base model at the root, the tuned model it started from, the dataset version of its prompts.
    Every feature that takes a tuned model then takes it (playground, /v1, benchmarks, held-out evaluation, exports,
    Hub push). Its files stay in the run's folder. A run that is registered already (a job run again) updates its
    model."""
    parent = model_choice_finetune(user=run.owner, choice=run.base_model)
    values = {"owner": run.owner, "name": run.name, "training": FineTune.Training.GRPO,
              "base_model": parent.base_model if parent is not None else run.base_model, "parent": parent,
              "version": run.version, "dataset": run.version.dataset if run.version is not None else None,
              "method": run.method, "config": dict(run.settings), "artifact": run.artifact,
              "metrics": {**run.metrics, "code_version": code_version()},
              "folder": run.folder,
              "adapter_base": adapter_base}
    if run.model_id is not None:
        FineTune.objects.filter(pk=run.model_id).update(**{k: v for k, v in values.items() if k != "name"})
        run.model.refresh_from_db()
        return run.model
    run.model = FineTune.objects.create(**values)
    run.save(update_fields=["model"])
    return run.model


def grpo_benchmarks_follow(job: Job) -> None:
    """What follows a GRPO run (an `after` of its job type): the benchmarks of the reference recipe, once the run
    succeeded."""
    run = GrpoRun.objects.filter(job=job).first() if job.status == Job.Status.SUCCEEDED else None
    if run is not None and run.recipe:
        grpo_recipe_benchmarks(run=run)


def grpo_recipe_benchmarks(*, run: GrpoRun) -> None:
    """Queue GSM8K benchmarks of the run's base model and of the tuned model (merged), with the prompt it was
    trained with. Side effects: two BenchmarkRun rows and their jobs; the run links to them. A benchmark that
    cannot be created is logged, never fatal: the trained model stays."""
    from apps.evaluation.services import benchmark_run_create

    # The tiny test model is built per run; the benchmark must ask that same model, so it is named by its folder (as
    # the merged model is: ARTIFACTS_PREFIX, resolved on whichever machine runs the benchmark). A tuned model as the
    # base is benchmarked as that tuned model.
    base = f"{ARTIFACTS_PREFIX}{run.folder}/base" if run.base_model == TINY_MODEL_ID else run.base_model
    base_finetune = None
    if run.base_model.startswith(FINETUNE_PREFIX):
        try:
            base_finetune, base = model_choice_finetune(user=run.owner, choice=run.base_model), ""
        except Http404:
            base = None  # deleted since: nothing to compare with
    merged = run.metrics.get("merged")
    benchmark_settings = {"limit": run.settings.get("benchmark_limit", RECIPE_SETTINGS["benchmark_limit"]),
                          "max_new_tokens": run.settings.get("benchmark_max_new_tokens", 512),
                          "system_prompt": run.settings.get("system_prompt", ""), "prompt_template": "{question}",
                          "temperature": 0.0}
    made = {}
    models = (("base_benchmark", base, base_finetune, "base"),
              ("tuned_benchmark", merged and f"{ARTIFACTS_PREFIX}{merged}", None, "tuned"))
    for field_name, model, finetune, label in models:
        if not model and finetune is None:
            continue
        try:
            made[field_name] = benchmark_run_create(
                owner=run.owner, benchmark="gsm8k", base_model=model or "", finetune=finetune,
                settings=benchmark_settings, name=f"{run.name} ({label})"[:200],
                label=(f"{model_choice_label(run.base_model)} (base of {run.name})" if label == "base"
                       else f"{run.name} (tuned)")[:300],
                platform_folder=bool(model) and model != run.base_model)  # the run's own folders, not a typed name
        except ValidationError as exc:
            logger.warning("Could not queue the %s benchmark of GRPO run %s: %s", label, run.code, exc.messages)
            _log(run, f"Could not queue the {label} benchmark: {' '.join(exc.messages)}")
    for field_name, benchmark in made.items():
        setattr(run, field_name, benchmark)
    run.save(update_fields=list(made))
    if made:
        _log(run, "Queued GSM8K benchmarks of the base and the tuned model")


def _log(run: GrpoRun, line: str) -> None:
    """A line in the run's job log (the job has ended: what follows it still shows there)."""
    if run.job is not None:
        job_event_add(job=run.job, type=JobEvent.Type.LOG, data={"line": line})


def reward_preview_execute(*, preview: RewardPreview, reporter, job=None) -> dict:
    """The job of a generated preview: the base model answers the prompts, then the rewards score the answers.
    Side effects: the preview's samples and results updated; judge requests with audit rows."""
    reporter.phase("generating", f"{model_choice_label(preview.base_model)} answers {len(preview.samples)} prompts")
    ref = model_choice_ref(user=preview.owner, choice=preview.base_model)
    system = preview.settings.get("system_prompt") or ""
    conversations = [([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": s["prompt"]}]
                     for s in preview.samples]
    try:
        completions = generate(ref, conversations, max_new_tokens=preview.settings.get("max_new_tokens", 128),
                               temperature=preview.settings.get("temperature", 1.0), seed=0, batch_size=8)
    finally:
        clear_cache()  # this gpu worker may train next: leave its memory free
    if reporter.should_stop():
        raise Cancelled()
    samples = [{**s, "completion": c} for s, c in zip(preview.samples, completions)]
    reporter.phase("scoring", f"{len(preview.rewards)} reward functions")
    results, judge = _score(owner=preview.owner, specs=preview.rewards, samples=samples, job=job)
    preview.samples, preview.results, preview.judge = without_nul(samples), results, judge
    preview.save(update_fields=["samples", "results", "judge"])
    reporter.progress(1.0, "Scored")
    return {"reward_preview": str(preview.code), "samples": len(samples),
            "mean_total": round(sum(r["total"] for r in results) / len(results), 4), **judge}


# ---------------------------------------------------------------------------------------------- job types

@job_type(Job.Kind.GRPO, after=(grpo_benchmarks_follow,))
def grpo_job(job, reporter):
    """Run a GRPO training run, or a reward preview whose completions the base model writes (queue `gpu`).
    Side effects: see grpo_run_execute and reward_preview_execute."""
    if "reward_preview" in job.config:
        return reward_preview_execute(preview=RewardPreview.objects.get(pk=job.config["reward_preview"]),
                                      reporter=reporter, job=job)
    return grpo_run_execute(run=GrpoRun.objects.get(pk=job.config["grpo_run"]), reporter=reporter)
