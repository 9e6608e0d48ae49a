"""What the inference engine (workers.engine.inference) takes: a reference to the model to load, and chat messages
checked before any model loads (the web process checks a request with the same function)."""
from __future__ import annotations

from dataclasses import dataclass

from workers.common.errors import ReadableError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ModelRef:
    """What to load: `path` is anything `from_pretrained` accepts (a local folder or a Hub id: a base model,
    or the folder of a fully fine-tuned model); `adapter` is a LoRA adapter folder applied on top, or None."""

    path: str
    adapter: str | None = None


def validate_messages(messages) -> list[dict]:
    """The messages as plain {"role", "content"} dicts; ReadableError for anything a chat template cannot take."""
    if not isinstance(messages, list) or not messages:
        raise ReadableError("A conversation needs at least one message.")
    clean = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ReadableError(f"Each message needs a role, one of: {', '.join(ROLES)}.")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI's content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
        if not isinstance(content, str):
            raise ReadableError("Each message's content must be text.")
        clean.append({"role": message["role"], "content": content})
    if clean[-1]["role"] == "assistant":
        raise ReadableError("The last message must come from the user (or the system), not the assistant.")
    return clean
