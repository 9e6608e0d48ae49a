"""Writes of the playground: checking a chat request, sending it to an inference worker and stopping it (the
worker runs it: apps.playground.jobs).

The web process never imports torch. A request travels as a Celery task on queue GARAGE_INFERENCE_QUEUE with
the name of a channel-layer channel to answer on; the worker sends `inference.*` messages there:
  inference.started {load_seconds}   the model is loaded (from its cache or disk) and decoding begins
  inference.piece   {text}           the next piece of the answer (pieces are batched every PIECE_INTERVAL)
  inference.done    {usage, seconds} the answer is complete (or was stopped)
  inference.error   {message, kind}  a readable error; kind is "invalid_request", "not_found" or "server_error"
Each message carries `request`, the request id. A stop is a short-lived Redis key the worker polls."""
from __future__ import annotations

import uuid
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError

from workers.common.errors import ReadableError


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
    from workers.common.serving import validate_messages

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
