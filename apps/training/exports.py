"""Outputs of a fine-tune beyond its training zip: merged model, GGUF files and the model card.

Starting an export queues a job on the `gpu` queue (merging and converting a real model needs the worker's memory
and can take many minutes); the job (apps.training.jobs.finetune_export_run) runs the engine in workers/engine/export.py. What it makes is stored under
`finetune_output_dir(finetune)/exports/` and recorded in `FineTune.outputs`; the web lists, reads and downloads
them where apps.training.artifacts keeps them (the bucket when there is one, else the local artifacts folder), and no
path leaves the artifacts folder."""
from pathlib import Path

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.models import Job
from apps.core.services import job_create
from apps.training.artifacts import artifact_read_text, artifact_size
from apps.training.models import FineTune
from apps.training.services import artifact_resolve
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
        "outputs": [kind for kind in KINDS if kind != "card" and finetune_output_size(finetune=finetune, name=kind)],
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
    if not finetune_has_files(finetune=finetune):
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
    """The files a user can download, the training zip first (read-only): name, label, bytes. Only files that exist
    where the web finds them (apps.training.artifacts) are listed."""
    items = []
    for name in ("model" if finetune.method == FineTune.Method.FULL else "adapter", *KINDS):
        size = finetune_output_size(finetune=finetune, name=name)
        if size is not None:
            items.append({"name": name, "label": LABELS[name], "bytes": size,
                          "created_at": (finetune.outputs or {}).get(name, {}).get("created_at")})
    return items


def finetune_output_relative(*, finetune: FineTune, name: str) -> str:
    """The recorded path, relative to the artifacts folder, of one output (`adapter`/`model` for the training zip,
    or an export kind); "" when there is none of that name."""
    if name in ("adapter", "model"):
        expected = "model" if finetune.method == FineTune.Method.FULL else "adapter"
        return finetune.artifact if name == expected else ""
    info = (finetune.outputs or {}).get(name) if name in KINDS else None
    return str(info.get("path", "")) if isinstance(info, dict) else ""


def finetune_output_size(*, finetune: FineTune, name: str) -> int | None:
    """The size in bytes of one output where the web finds it, or None when it does not exist."""
    relative = finetune_output_relative(finetune=finetune, name=name)
    return artifact_size(relative=relative) if relative else None


def finetune_has_files(*, finetune: FineTune) -> bool:
    """Whether the model finished training and its files are kept (what downloads, exports and evaluations need)."""
    return bool(finetune.artifact) and artifact_size(relative=finetune.artifact) is not None


def finetune_output_path(*, finetune: FineTune, name: str) -> Path | None:
    """The absolute path of one output in this machine's artifacts folder, if it is there."""
    relative = finetune_output_relative(finetune=finetune, name=name)
    return artifact_resolve(relative=relative) if relative else None


def finetune_card_text(*, finetune: FineTune) -> str | None:
    """The model card's Markdown, once written (read-only)."""
    relative = finetune_output_relative(finetune=finetune, name="card")
    return artifact_read_text(relative=relative) if relative else None
