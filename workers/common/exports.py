"""What a fine-tune can be exported as (workers.engine.export makes it), where the files go, and how an output names
its base model for other machines."""
from __future__ import annotations

import re
from pathlib import PurePath

from workers.common.catalogue import CATALOGUE

KINDS = ("merged", "gguf_f16", "gguf_q8_0", "card")
GGUF_TYPES = {"gguf_f16": "f16", "gguf_q8_0": "q8_0"}
EXPORTS = "exports"  # the folder of a fine-tune's exports, beside model/
CARD = "README.md"

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")


def _is_hub_id(name: str) -> bool:
    return bool(_HUB_ID.fullmatch(name or ""))


def base_hub_id(name: str) -> str:
    """The Hub id of a base model, for what must load on another machine (an adapter's config, a card's metadata):
    a PyPI copy's upstream model, a catalogue model's Hub id, or the Hub id the user gave. "" when the model has
    none: the tiny model, which is built on the server, and local folders."""
    entry = CATALOGUE.get(name)
    if entry is not None:
        if entry.upstream_id:
            return entry.upstream_id
        return "" if entry.package or entry.family == "tiny" else (entry.hub_id or entry.id)
    return name if _is_hub_id(name) else ""


def base_portable_name(name: str) -> str:
    """What an output names its base by: its Hub id when it has one, else a neutral name (the tiny model's own
    name, a local folder's last part), never a path on this server."""
    hub_id = base_hub_id(name)
    if hub_id:
        return hub_id
    return PurePath(name).name if name else "unknown"
