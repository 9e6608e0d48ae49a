"""Writes of the playground: checking a chat request, sending it to an inference worker, stopping it, and (on
the worker) running it.

The web process never imports torch. A request travels as a Celery task on queue GARAGE_INFERENCE_QUEUE with
the name of a channel-layer channel to answer on; the worker sends `inference.*` messages there:
  inference.started {load_seconds}   the model is loaded (from its cache or disk) and decoding begins
  inference.piece   {text}           the next piece of the answer (pieces are batched every PIECE_INTERVAL)
  inference.done    {usage, seconds} the answer is complete (or was stopped)
  inference.error   {message, kind}  a readable error; kind is "invalid_request", "not_found" or "server_error"
Each message carries `request`, the request id. A stop is a short-lived Redis key the worker polls."""
from __future__ import annotations

import logging
import time
import uuid
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404

from workers.errors import ReadableError

logger = logging.getLogger(__name__)

TASK_NAME = "playground.generate"
PIECE_INTERVAL = 0.05  # seconds: fewer, larger messages keep the channel well under its capacity
STOP_CHECK_INTERVAL = 0.1
STOP_TTL = 600
MAX_CONTENT_CHARS = 200_000
INTERNAL_ERROR = "Something went wrong on our side while generating. An administrator can see the details."


def _number(raw: dict, name: str, default, cast, low, high, *, low_open=False):
    value = raw.get(name)
    if value in (None, ""):
        return default
    try:
        value = cast(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number.", code=name)
    if isinstance(value, bool) or value > high or value < low or (low_open and value == low):
        bound = f"above {low}" if low_open else f"at least {low}"
        raise ValidationError(f"{name} must be {bound} and at most {high}.", code=name)
    return value


def inference_options(raw: dict | None) -> dict:
    """Sampling settings from user input (form, websocket or API body): temperature, top_p, max_tokens, seed.
    ValidationError (its code names the field) for a value out of range."""
    raw = raw or {}
    return {
        "temperature": _number(raw, "temperature", 0.0, float, 0.0, 2.0),
        "top_p": _number(raw, "top_p", 1.0, float, 0.0, 1.0, low_open=True),
        "max_tokens": _number(raw, "max_tokens", min(256, settings.GARAGE_INFERENCE_MAX_TOKENS), int, 1,
                              settings.GARAGE_INFERENCE_MAX_TOKENS),
        "seed": _number(raw, "seed", 0, int, 0, 2**31 - 1),
    }


def inference_messages(raw) -> list[dict]:
    """Chat messages as plain {"role", "content"} dicts; ValidationError (code "messages") otherwise."""
    from workers.inference import validate_messages  # pure Python: the engine imports torch only when it runs

    try:
        messages = validate_messages(raw)
    except ReadableError as exc:
        raise ValidationError(str(exc), code="messages")
    if sum(len(m["content"]) for m in messages) > MAX_CONTENT_CHARS:
        raise ValidationError(f"The conversation is too long: at most {MAX_CONTENT_CHARS} characters.", code="messages")
    return messages


def inference_enqueue(*, user, model, messages: list[dict], options: dict, reply_to: str) -> str:
    """Send a chat request to an inference worker; returns its request id. The task expires with the web side's
    patience, so that a worker that was busy does not answer someone who already gave up."""
    from garage.celery import app

    request_id = uuid.uuid4().hex
    app.send_task(TASK_NAME, kwargs={"request_id": request_id, "user_id": user.pk, "model_id": model.id,
                                     "messages": messages, "options": options, "reply_to": reply_to},
                  queue=settings.GARAGE_INFERENCE_QUEUE, expires=settings.GARAGE_INFERENCE_TIMEOUT)
    return request_id


@lru_cache(maxsize=1)
def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def _stop_key(request_id: str) -> str:
    return f"garage:inference:stop:{request_id}"


def inference_stop(*, request_id: str) -> None:
    """Ask the worker to stop this request (side effect: a Redis key that expires after STOP_TTL seconds)."""
    _redis().set(_stop_key(request_id), "1", ex=STOP_TTL)


def inference_stop_requested(*, request_id: str) -> bool:
    return bool(_redis().exists(_stop_key(request_id)))


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
    from apps.accounts.models import User
    from apps.playground.selectors import chat_model_get_for_user
    from workers import inference

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
        ref = model.ref()
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
