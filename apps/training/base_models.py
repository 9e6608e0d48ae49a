"""Which base models a worker may load: the one check of a model name that a person gives, for training, for the
generation of pairs by a local model, for evaluation and for every model picker (apps.training.model_choices). It
reads only the catalogue and the settings, so the datasets app may ask it without depending on training's services."""
import re
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError

from workers.common.catalogue import CATALOGUE

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


def base_model_clean(*, name: str) -> str:
    """A model the GPU worker may load: a catalogue entry (a PyPI copy only when installed), a Hub id, or a folder
    inside one of GARAGE_LOCAL_MODEL_DIRS (so nobody can point the worker at another user's files).
    Raises ValidationError otherwise."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Choose a base model: one from the catalogue, a Hugging Face Hub id or a local folder.")
    entry = CATALOGUE.get(name)
    if entry is not None:
        if entry.package and not entry.installed:
            raise ValidationError(f"The model '{entry.label}' needs the package {entry.package} on the workers: "
                                  f"install it with {entry.install_hint}.")
        if entry.from_hub:
            _hub_model_reachable(entry.hub_id or entry.id, label=entry.label)
        return name
    if HUB_ID.match(name) and not name.startswith("."):
        _hub_model_reachable(name, label=name)
        return name
    path = PurePosixPath(name)
    allowed = [PurePosixPath(d) for d in settings.GARAGE_LOCAL_MODEL_DIRS]
    if path.is_absolute() and ".." not in path.parts and any(path == d or d in path.parents for d in allowed):
        return str(path)
    where = ", ".join(str(d) for d in allowed) or "none configured (GARAGE_LOCAL_MODEL_DIRS)"
    raise ValidationError(f"The model must be one from the catalogue, a Hugging Face Hub id, or a folder inside the "
                          f"model folders of this server ({where}).")


def _hub_model_reachable(repo_id: str, *, label: str) -> None:
    """A server told to stay offline (HF_HUB_OFFLINE) can load a Hub model only from its local cache: refuse one
    that is not there now, rather than fail in the worker later."""
    from workers.common.catalogue import in_hub_cache
    from workers.common.records import hub_offline

    if hub_offline() and not in_hub_cache(repo_id):
        raise ValidationError(f"The model '{label}' is not on this server, and the server works offline "
                              f"(HF_HUB_OFFLINE): choose an installed model, or download it on a machine that is "
                              f"online into this server's Hugging Face cache.")
