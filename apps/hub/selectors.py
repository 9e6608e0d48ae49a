"""Reads of the hub app: a user's connection and preferences, their push jobs, and what a fine-tune can publish."""
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.core.models import Job
from apps.hub.models import HubConnection, HubPreferences
from apps.training.models import FineTune
from apps.training.exports import finetune_has_files
from workers.common.exports import GGUF_TYPES

# What can be pushed, in the order forms offer it. The training folder's `model/` holds the LoRA adapter or the
# fully fine-tuned model; merged and GGUF files exist once an export made them (apps/training/exports.py).
ARTIFACTS = {
    "adapter": "LoRA adapter",
    "model": "Fully fine-tuned model",
    "merged": "Merged model (adapter folded into the base)",
    "gguf": "GGUF files (llama.cpp)",
}


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


def hub_push_whats(*, finetune: FineTune) -> list[str]:
    """What this fine-tune can publish now (keys of ARTIFACTS, in their order), read from what its jobs recorded:
    the training output once training has finished and its files are kept, an export once it was made. Nothing here
    reads a model's files, which may live in the bucket or on a worker's disk (hub.jobs gathers them for the push)."""
    if not finetune_has_files(finetune=finetune):
        return []
    lora = finetune.method != FineTune.Method.FULL
    outputs = finetune.outputs or {}
    available = {
        # An adapter that applies to a model of this server (stacked on another tuned model or a warm-up) leaves merged.
        "adapter": lora and not finetune.stacked,
        "model": not lora,
        "merged": lora and "merged" in outputs,
        "gguf": bool(set(GGUF_TYPES) & set(outputs)),
    }
    return [what for what in ARTIFACTS if available[what]]


def hub_push_choices(*, finetune: FineTune) -> list[dict]:
    """What this fine-tune can publish now: [{"key", "label"}], the training output first."""
    return [{"key": what, "label": ARTIFACTS[what]} for what in hub_push_whats(finetune=finetune)]
