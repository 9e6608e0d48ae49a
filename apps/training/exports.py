"""Outputs of a fine-tune beyond its training zip: merged model, GGUF files and the model card.

Starting an export queues a job on the `gpu` queue (merging and converting a real model needs the worker's memory
and can take many minutes); the job (apps.training.jobs.finetune_export_run) runs the engine in workers/engine/export.py. What it makes is stored under
`finetune_output_dir(finetune)/exports/` and recorded in `FineTune.outputs`, and every download goes through
`artifact_resolve`, which keeps it inside the artifacts folder."""
from pathlib import Path

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.models import Job
from apps.core.services import job_create
from apps.training.models import FineTune
from apps.training.services import artifact_resolve, finetune_artifact_path
from workers.common.catalogue import CATALOGUE
from workers.common.exports import KINDS, base_portable_name

LABELS = {
    "adapter": "LoRA adapter (.zip)",
    "model": "Full model (.zip)",
    "merged": "Merged model (.zip)",
    "gguf_f16": "GGUF f16 (.zip)",
    "gguf_q8_0": "GGUF q8_0 (.zip)",
    "card": "Model card (README.md)",
}


def finetune_file_stem(finetune: FineTune) -> str:
    """The fine-tune's name made safe for file names (GGUF files and downloads)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in finetune.name).strip("-")[:60] or "model"


def finetune_card_facts(finetune: FineTune) -> dict:
    """What the model card says: base model, data, hyperparameters, metrics (with the held-out evaluation), lineage,
    and the exports whose files exist (workers.engine.export.model_card)."""
    version = finetune.version
    # A catalogue id stays as is (the card names a PyPI copy by its upstream Hub id and says it was trained on the
    # copy); anything else is reduced to its portable name, so that no folder of this server reaches the card.
    base = finetune.base_model if finetune.base_model in CATALOGUE else base_portable_name(finetune.base_model)
    return {
        "name": finetune.name,
        "base_model": base,
        "method": finetune.method,
        "method_display": finetune.get_method_display(),
        "training": finetune.training,
        "training_display": finetune.get_training_display(),
        "started_from": finetune.parent.name if finetune.parent_id else "",
        "stacked": finetune.stacked,
        "dataset": {"name": finetune.dataset.name if finetune.dataset_id else finetune_prompts_label(finetune),
                    "version": version.number if version else None,
                    "examples": version.example_count if version else finetune.metrics.get("examples",
                                                                                           finetune.metrics.get("prompts")),
                    "code": str(version.code) if version else ""},
        "hyperparameters": {k: v for k, v in (finetune.config or {}).items() if k != "system_prompt"},
        "system_prompt": (finetune.config or {}).get("system_prompt") or "",
        "metrics": finetune.metrics,
        "created": timezone.localdate(finetune.created_at).isoformat() if finetune.created_at else "",
        "stem": finetune_file_stem(finetune),
        "outputs": [kind for kind in KINDS if kind != "card" and finetune_output_path(finetune=finetune, name=kind)],
    }


def finetune_prompts_label(finetune: FineTune) -> str:
    """What a model without a dataset trained on: the prompts of its GRPO run."""
    run = getattr(finetune, "grpo_run", None)
    return run.get_source_display() if run is not None else ""


def finetune_export_kinds_validate(*, finetune: FineTune, kinds) -> list[str]:
    """The requested kinds, deduplicated in a fixed order; ValidationError for anything that cannot be made."""
    kinds = list(kinds or [])
    unknown = [str(kind) for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise ValidationError(f"Choose what to export among: {', '.join(KINDS)}.")
    if finetune_artifact_path(finetune) is None:
        raise ValidationError("This model has not finished training yet; export it once it has.")
    if "merged" in kinds and finetune.method == FineTune.Method.FULL:
        raise ValidationError("This model was fully fine-tuned: its download is already a complete model, with no "
                              "adapter to merge. GGUF export works on it directly.")
    return [kind for kind in KINDS if kind in kinds]


def finetune_export_job_latest(*, finetune: FineTune) -> Job | None:
    """The most recent export job of this fine-tune, if any (read-only)."""
    return (Job.objects.filter(owner=finetune.owner, kind=Job.Kind.EXPORT, config__finetune=finetune.pk)
            .order_by("-created_at", "-id").first())


def finetune_export_start(*, finetune: FineTune, kinds) -> Job:
    """Queue an export job (queue `gpu`, through the fair dispatcher) for the given kinds of output.

    Side effects: creates a Job row and sends its task once the transaction commits. Refuses (ValidationError)
    unknown kinds, an unfinished model, merging a full fine-tune, and a second export while one is running: both
    would write the same folder."""
    kinds = finetune_export_kinds_validate(finetune=finetune, kinds=kinds)
    running = Job.objects.filter(kind=Job.Kind.EXPORT, config__finetune=finetune.pk).exclude(status__in=Job.FINAL)
    if running.exists():
        raise ValidationError("An export of this model is already queued or running; wait for it to finish.")
    names = ", ".join(LABELS[kind].split(" (")[0] for kind in kinds)
    return job_create(owner=finetune.owner, kind=Job.Kind.EXPORT, queue="gpu", title=f"Export {finetune.name}: {names}",
                      config={"finetune": finetune.pk, "kinds": kinds})


def finetune_output_list(*, finetune: FineTune) -> list[dict]:
    """The files a user can download, the training zip first (read-only): name, label, bytes, absolute path.
    Only files that exist are listed."""
    items = []
    training = finetune_artifact_path(finetune)
    if training is not None:
        name = "model" if finetune.method == FineTune.Method.FULL else "adapter"
        items.append({"name": name, "label": LABELS[name], "bytes": training.stat().st_size, "path": training})
    for kind in KINDS:
        path = finetune_output_path(finetune=finetune, name=kind)
        if path is not None:
            items.append({"name": kind, "label": LABELS[kind], "bytes": path.stat().st_size, "path": path,
                          "created_at": finetune.outputs[kind].get("created_at")})
    return items


def finetune_output_path(*, finetune: FineTune, name: str) -> Path | None:
    """The absolute path of one output (`adapter`/`model` for the training zip, or an export kind) if it exists."""
    if name in ("adapter", "model"):
        expected = "model" if finetune.method == FineTune.Method.FULL else "adapter"
        return finetune_artifact_path(finetune) if name == expected else None
    info = (finetune.outputs or {}).get(name) if name in KINDS else None
    return artifact_resolve(relative=info.get("path", "")) if isinstance(info, dict) else None


def finetune_card_text(*, finetune: FineTune) -> str | None:
    """The model card's Markdown, once written (read-only)."""
    path = finetune_output_path(finetune=finetune, name="card")
    return path.read_text(encoding="utf-8", errors="replace") if path is not None else None
