"""The worker side of the playground: answering one chat request on an inference worker, streaming the answer to
the channel the request names (see apps.playground.services for the messages)."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import Http404

from apps.accounts.models import User
from apps.playground.selectors import TUNED, ChatModel, chat_model_get_for_user
from apps.playground.services import INTERNAL_ERROR, PIECE_INTERVAL, STOP_CHECK_INTERVAL, inference_stop_requested
from apps.training.jobs import finetune_base_ref, model_choice_ref
from apps.training.model_choices import FINETUNE_PREFIX
from workers.common.errors import ReadableError
from workers.engine import inference

logger = logging.getLogger(__name__)


def chat_model_ref(model: ChatModel):
    """workers.common.serving.ModelRef of a playground model (paths as seen by this machine), resolved as every
    feature's model is."""
    if model.kind == TUNED:
        return model_choice_ref(user=model.finetune.owner, choice=f"{FINETUNE_PREFIX}{model.finetune.code}")
    if model.finetune is not None:
        return finetune_base_ref(model.finetune)
    return model_choice_ref(user=None, choice=model.id)


class _Replies:
    """Sends a request's messages to its reply channel, batching pieces."""

    def __init__(self, reply_to: str, request_id: str):
        from channels.layers import get_channel_layer

        from apps.core.realtime import _publisher  # the process's kept event loop for channel-layer sends

        self.layer, self.publisher = get_channel_layer(), _publisher
        self.reply_to, self.request_id = reply_to, request_id
        self.buffer: list[str] = []
        self.last_flush = 0.0
        self.gone = False  # the reader stopped reading (its channel is full): stop generating

    def send(self, type: str, **data):
        from channels.exceptions import ChannelFull

        try:
            self.publisher.run(self.layer.send(self.reply_to, {"type": type, "request": self.request_id, **data}))
        except ChannelFull:
            self.gone = True

    def piece(self, text: str):
        self.buffer.append(text)
        if time.monotonic() - self.last_flush >= PIECE_INTERVAL:
            self.flush()

    def flush(self):
        if self.buffer:
            text, self.buffer = "".join(self.buffer), []
            self.send("inference.piece", text=text)
        self.last_flush = time.monotonic()


def inference_run(*, request_id: str, user_id: int, model_id: str, messages: list, options: dict, reply_to: str) -> dict:
    """Answer one chat request on this worker, streaming to `reply_to`. The model is resolved again here with
    the user's own selector, so a request can never reach another user's model.

    Side effects: loads the model into this process's LRU cache (bounded by GARAGE_INFERENCE_CACHE_GIB), sends
    inference.* messages (see the module docstring). Returns the usage counts."""
    inference.configure_cache(max_bytes=int(settings.GARAGE_INFERENCE_CACHE_GIB * 1024 ** 3))
    replies = _Replies(reply_to, request_id)
    if inference_stop_requested(request_id=request_id):
        return {}
    try:
        model = chat_model_get_for_user(user=User.objects.get(pk=user_id), model_id=model_id)
    except (User.DoesNotExist, Http404):
        replies.send("inference.error", kind="not_found", message="This model does not exist or is not yours.")
        return {}

    last_check, stop = 0.0, False

    def should_stop():
        nonlocal last_check, stop
        now = time.monotonic()
        if not stop and now - last_check >= STOP_CHECK_INTERVAL:
            last_check = now
            stop = replies.gone or inference_stop_requested(request_id=request_id)
        return stop

    started = time.monotonic()
    usage: dict = {}
    try:
        ref = chat_model_ref(model)
        inference.load(ref)
        replies.send("inference.started", load_seconds=round(time.monotonic() - started, 3))
        decode_started = time.monotonic()
        for piece in inference.stream(ref, messages, max_new_tokens=options["max_tokens"], temperature=options["temperature"],
                                      top_p=options["top_p"], seed=options["seed"], should_stop=should_stop, usage=usage):
            replies.piece(piece)
        replies.flush()
        if stop:
            usage["finish_reason"] = "stop"
        seconds = time.monotonic() - decode_started
        replies.send("inference.done", usage=usage, seconds=round(seconds, 3),
                     tokens_per_s=round(usage.get("completion_tokens", 0) / seconds, 1) if seconds > 0 else None)
    except ReadableError as exc:
        replies.send("inference.error", kind="invalid_request", message=str(exc))
    except Exception:
        logger.exception("Inference request %s on model %s failed", request_id, model_id)
        replies.send("inference.error", kind="server_error", message=INTERNAL_ERROR)
    return usage
