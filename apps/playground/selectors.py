"""Reads of the playground: which models a user may chat with, and under which ids.

A chat model is a tuned model (fine-tuned or GRPO, once trained), the model one started from, or a real model
installed on this server (the same list every feature offers, apps.training.model_choices). Ids are stable, readable
strings that OpenAI clients send as `model`:
- a tuned model: its fine-tune's code (a UUID);
- a base or installed model: its catalogue name or Hub id (such as pypi/SmolLM2-135M-Instruct), shared by all
  fine-tunes of that base; the tiny test model is built per fine-tune, so its id names the fine-tune:
  `tiny-gemma3@<code>`."""
from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from apps.training.model_choices import (
    default_model_choice,
    installed_model_choices,
    model_choice_label,
)
from apps.training.models import FineTune
from apps.training.selectors import finetune_list_for_user
from workers.common.catalogue import TINY_MODEL_ID

TUNED, BASE = "tuned", "base"
# The model picker offers the newest fine-tunes only; older ones are still reachable by id.
PICKER_LIMIT = 50


@dataclass(frozen=True)
class ChatModel:
    id: str
    label: str
    kind: str  # TUNED or BASE
    # The fine-tune it is, or (for a base model) one that started from it; None for an installed model that no
    # fine-tune of the user started from.
    finetune: FineTune | None

    def as_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "kind": self.kind}


def _ready(*, user):
    """The user's fine-tunes whose model files were written (the training zip is recorded at the very end)."""
    return finetune_list_for_user(user=user).exclude(artifact="").select_related("parent")


def _base_id(finetune: FineTune) -> str:
    if finetune.parent_id:
        return str(finetune.parent.code)
    return f"{TINY_MODEL_ID}@{finetune.code}" if finetune.base_model == TINY_MODEL_ID else finetune.base_model


def _tuned(finetune: FineTune) -> ChatModel:
    return ChatModel(id=str(finetune.code), label=finetune.name, kind=TUNED, finetune=finetune)


def _base(finetune: FineTune) -> ChatModel:
    """The model a tuned model started from: its base model, or (when it started from another of the user's models)
    that tuned model itself."""
    if finetune.parent_id:
        return _tuned(finetune.parent)
    label = (f"Base of {finetune.name} (the tiny test model)" if finetune.base_model == TINY_MODEL_ID
             else f"{model_choice_label(finetune.base_model)} (base)")
    return ChatModel(id=_base_id(finetune), label=label, kind=BASE, finetune=finetune)


def _installed() -> dict[str, ChatModel]:
    return {choice.value: ChatModel(id=choice.value, label=choice.label, kind=BASE, finetune=None)
            for choice in installed_model_choices()}


def chat_model_list_for_user(*, user, limit: int | None = PICKER_LIMIT) -> list[ChatModel]:
    """The user's tuned models, newest first, each followed by its base model (listed once per base), then the
    other real models installed on this server."""
    finetunes = _ready(user=user)
    if limit is not None:
        finetunes = finetunes[:limit]
    models, seen = [], set()
    for finetune in finetunes:
        for model in (_tuned(finetune), _base(finetune)):
            if model.id not in seen:
                seen.add(model.id)
                models.append(model)
    return models + [model for model in _installed().values() if model.id not in seen]


def chat_model_get_for_user(*, user, model_id) -> ChatModel:
    """The user's chat model with this id; 404 for anyone else's, for unknown ids, for models this server does not
    have, and for unfinished trainings."""
    if not isinstance(model_id, str) or not model_id or len(model_id) > 400:
        raise Http404("No such model.")
    from apps.training.selectors import finetune_get_for_user

    ready = _ready(user=user)
    name, _, code = model_id.rpartition("@")
    if name == TINY_MODEL_ID:
        finetune = ready.filter(code=_uuid(code), base_model=TINY_MODEL_ID, parent=None).first() if _uuid(code) else None
        if finetune is None:
            raise Http404("No such model.")
        return _base(finetune)
    if _uuid(model_id):
        finetune = finetune_get_for_user(user=user, code=model_id)
        if not finetune.artifact:
            raise Http404("This model has not finished training.")
        return _tuned(finetune)
    finetune = ready.filter(base_model=model_id, parent=None).exclude(base_model=TINY_MODEL_ID).first()
    if finetune is not None:
        return _base(finetune)
    installed = _installed().get(model_id)
    if installed is None:
        raise Http404("No such model.")
    return installed


def chat_model_default_ids(*, user) -> list[str]:
    """The columns of a first visit: the newest tuned model beside its base; without one, the server's default
    model when it is a real one."""
    finetune = _ready(user=user).first()
    if finetune is not None:
        return [str(finetune.code), _base_id(finetune)]
    default = default_model_choice()
    return [default] if default in _installed() else []


def _uuid(value: str):
    import uuid

    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
