"""Reads of the hub app: a user's connection and preferences, their push jobs, and what a fine-tune can publish."""
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.core.models import Job
from apps.hub.models import HubConnection, HubPreferences
from apps.training.models import FineTune
from apps.training.services import finetune_artifact_path, finetune_output_dir

# What can be pushed, in the order forms offer it. The training folder's `model/` holds the LoRA adapter or the
# fully fine-tuned model; merged and GGUF files exist once an export made them (apps/training/exports.py).
ARTIFACTS = {
    "adapter": "LoRA adapter",
    "model": "Fully fine-tuned model",
    "merged": "Merged model (adapter folded into the base)",
    "gguf": "GGUF files (llama.cpp)",
}
# Files of the training folder that describe the run on this server rather than the model.
_SKIPPED = {"README.md", "training_args.bin"}


def hub_connection_get(*, user) -> HubConnection | None:
    """The user's own connection, if any. There is no lookup by code: nobody can reach another's connection."""
    if not getattr(user, "is_authenticated", False):
        return None
    return HubConnection.objects.filter(owner=user).first()


def hub_preferences_get(*, user) -> HubPreferences:
    """The user's publishing preferences; the defaults (unsaved) when they never changed them."""
    return HubPreferences.objects.filter(owner=user).first() or HubPreferences(owner=user)


def hub_push_list_for_user(*, user, finetune: FineTune | None = None) -> QuerySet[Job]:
    jobs = Job.objects.filter(owner=user, kind=Job.Kind.PUSH)
    if finetune is not None:
        jobs = jobs.filter(config__finetune=finetune.pk)
    return jobs.order_by("-created_at", "-id")


def hub_push_get_for_user(*, user, code) -> Job:
    """The user's push job; 404 for anyone else and for jobs of other kinds."""
    try:
        return Job.objects.get(owner=user, kind=Job.Kind.PUSH, code=code)
    except (Job.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such push.")


def _folder_files(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): str(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in _SKIPPED and not p.name.endswith(".partial")}


def hub_push_files(*, finetune: FineTune, what: str) -> dict[str, str]:
    """The files a push of `what` uploads (path in the repository → file here), the model card left out: every
    push writes a fresh one. Empty when that output does not exist (yet)."""
    if finetune_artifact_path(finetune) is None:
        return {}
    output_dir = finetune_output_dir(finetune)
    lora = finetune.method != FineTune.Method.FULL
    # An adapter that applies to a model of this server (stacked on another tuned model or a warm-up) leaves it merged.
    if what == "adapter" and lora and not finetune.stacked or what == "model" and not lora:
        return _folder_files(output_dir / "model")
    if what == "merged" and lora and "merged" in (finetune.outputs or {}):
        return _folder_files(output_dir / "exports" / "merged")
    if what == "gguf" and {"gguf_f16", "gguf_q8_0"} & set(finetune.outputs or {}):
        return {name: path for name, path in _folder_files(output_dir / "exports" / "gguf").items() if name.endswith(".gguf")}
    return {}


def hub_push_choices(*, finetune: FineTune) -> list[dict]:
    """What this fine-tune can publish now: [{"key", "label", "files"}], the training output first."""
    choices = []
    for key, label in ARTIFACTS.items():
        files = hub_push_files(finetune=finetune, what=key)
        if files:
            choices.append({"key": key, "label": label, "files": sorted(files)})
    return choices
