"""The OpenAI-compatible endpoint: GET /v1/models and POST /v1/chat/completions, for any OpenAI client.

Authenticated by the user's personal API token (`Authorization: Bearer gg_…`), like the REST API. Errors use
OpenAI's shape, {"error": {"message", "type", "param", "code"}}, so clients raise their usual exceptions.
The views are async: a request waits on the channel layer for the worker's pieces without holding a thread."""
import asyncio
import json
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.models import API_TOKEN_PREFIX
from apps.accounts.services import api_token_authenticate
from apps.accounts.throttling import throttle_wait, throttled_message
from apps.core.parsers import JSONBodyError, json_loads_checked
from apps.playground.selectors import chat_model_get_for_user, chat_model_list_for_user
from apps.playground.services import inference_enqueue, inference_messages, inference_options, inference_stop


def _error(status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
           param: str | None = None) -> JsonResponse:
    response = JsonResponse({"error": {"message": message, "type": type, "param": param, "code": code}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _timeout_error() -> JsonResponse:
    return _error(504, f"No inference worker answered within {settings.GARAGE_INFERENCE_TIMEOUT:g} seconds. The "
                       "workers may all be busy, or none serves the 'inference' queue; try again later.",
                  type="timeout", code="timeout")


def _not_found(model_id) -> JsonResponse:
    return _error(404, f"The model '{model_id}' does not exist or you do not have access to it. "
                       "GET /v1/models lists yours.", code="model_not_found", param="model")


def _token_user(request):
    """The active owner of the bearer API token, or None."""
    parts = request.headers.get("Authorization", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].startswith(API_TOKEN_PREFIX):
        return None
    token = api_token_authenticate(secret=parts[1])
    return token.owner if token is not None and token.owner.is_active else None


async def _authenticate(request):
    user = await sync_to_async(_token_user)(request)
    if user is None:
        return None, _error(401, "Missing or invalid API token. Send `Authorization: Bearer gg_…` with a token from "
                                 "your account settings.", code="invalid_api_key")
    wait = await sync_to_async(throttle_wait)(scope="openai", ident=f"user:{user.pk}")
    if wait:
        # OpenAI's own shape for this refusal; OpenAI clients wait for Retry-After and try again by themselves.
        response = _error(429, throttled_message(wait), type="requests", code="rate_limit_exceeded")
        response["Retry-After"] = str(wait)
        return None, response
    return user, None


def _created(model) -> int:
    """When the model came to be: its fine-tune's creation; 0 for an installed model no fine-tune started from."""
    return int(model.finetune.created_at.timestamp()) if model.finetune is not None else 0


async def models(request):
    if request.method != "GET":
        return _error(405, "Use GET on /v1/models.")
    user, failure = await _authenticate(request)
    if failure:
        return failure
    listed = await sync_to_async(chat_model_list_for_user)(user=user, limit=None)
    return JsonResponse({"object": "list", "data": [
        {"id": m.id, "object": "model", "created": _created(m), "owned_by": "you" if m.kind == "tuned" else "base model"}
        for m in listed]})


async def model_detail(request, model_id):
    if request.method != "GET":
        return _error(405, "Use GET on /v1/models/<id>.")
    user, failure = await _authenticate(request)
    if failure:
        return failure
    try:
        model = await sync_to_async(chat_model_get_for_user)(user=user, model_id=model_id)
    except Http404:
        return _not_found(model_id)
    return JsonResponse({"id": model.id, "object": "model", "created": _created(model),
                         "owned_by": "you" if model.kind == "tuned" else "base model"})


def _options(body: dict) -> dict:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return inference_options({"temperature": body.get("temperature"), "top_p": body.get("top_p"),
                              "max_tokens": max_tokens, "seed": body.get("seed")})


@csrf_exempt  # token-authenticated, never by cookie: cross-site requests cannot forge it
async def chat_completions(request):
    if request.method != "POST":
        return _error(405, "Use POST on /v1/chat/completions.")
    user, failure = await _authenticate(request)
    if failure:
        return failure
    try:
        body = json_loads_checked(request.body or b"null")
    except JSONBodyError as exc:
        return _error(400, str(exc))
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.")
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        return _error(400, "`model` is required: one of the ids GET /v1/models lists.", param="model")
    if body.get("n", 1) != 1:
        return _error(400, "Only n=1 is supported.", param="n")
    try:
        model = await sync_to_async(chat_model_get_for_user)(user=user, model_id=model_id)
    except Http404:
        return _not_found(model_id)
    try:
        messages = inference_messages(body.get("messages"))
        options = _options(body)
    except ValidationError as exc:
        return _error(400, " ".join(exc.messages), param=exc.error_list[0].code)
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        return _error(400, "`stream_options` must be an object, such as {\"include_usage\": true}.",
                      param="stream_options")
    stream = bool(body.get("stream"))
    include_usage = stream and bool(stream_options.get("include_usage"))

    layer = get_channel_layer()
    channel = await layer.new_channel()
    request_id = await sync_to_async(inference_enqueue)(user=user, model=model, messages=messages, options=options,
                                                        reply_to=channel)

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), settings.GARAGE_INFERENCE_TIMEOUT)

    # Wait until the model is loaded, so that a missing worker or a refused conversation gets a proper status.
    try:
        first = await receive()
    except TimeoutError:
        await sync_to_async(inference_stop)(request_id=request_id)
        return _timeout_error()
    if first["type"] == "inference.error":
        return _worker_error(first, model_id)
    meta = {"id": f"chatcmpl-{request_id}", "created": int(time.time()), "model": model_id}
    if stream:
        response = StreamingHttpResponse(_sse(receive, request_id, meta, include_usage), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the pieces back
        return response

    text = []
    try:
        while True:
            message = await receive()
            if message["type"] == "inference.piece":
                text.append(message["text"])
            elif message["type"] == "inference.error":
                return _worker_error(message, model_id)
            elif message["type"] == "inference.done":
                break
    except TimeoutError:
        await sync_to_async(inference_stop)(request_id=request_id)
        return _timeout_error()
    usage = message.get("usage", {})
    return JsonResponse({**meta, "object": "chat.completion", "choices": [{
        "index": 0, "message": {"role": "assistant", "content": "".join(text)},
        "finish_reason": usage.get("finish_reason", "stop"), "logprobs": None}], "usage": _usage(usage)})


def _usage(usage: dict) -> dict:
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _worker_error(message: dict, model_id) -> JsonResponse:
    kind = message.get("kind")
    if kind == "not_found":
        return _not_found(model_id)
    if kind == "invalid_request":
        return _error(400, message["message"], param="messages")
    return _error(500, message["message"], type="server_error", code="server_error")


def _event(data) -> bytes:
    return f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode()


async def _sse(receive, request_id, meta, include_usage):
    """Server-sent events as OpenAI sends them: a role chunk, content chunks, a finish chunk, usage, [DONE]."""
    chunk = {**meta, "object": "chat.completion.chunk"}
    finished = False
    try:
        yield _event({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        while True:
            try:
                message = await receive()
            except TimeoutError:
                yield _event({"error": {"message": "The inference worker stopped answering.", "type": "timeout",
                                        "param": None, "code": "timeout"}})
                return
            if message["type"] == "inference.piece":
                yield _event({**chunk, "choices": [{"index": 0, "delta": {"content": message["text"]}, "finish_reason": None}]})
            elif message["type"] == "inference.error":
                yield _event({"error": {"message": message["message"], "type": "server_error", "param": None,
                                        "code": message.get("kind")}})
                return
            elif message["type"] == "inference.done":
                usage = message.get("usage", {})
                yield _event({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": usage.get("finish_reason", "stop")}]})
                if include_usage:
                    yield _event({**chunk, "choices": [], "usage": _usage(usage)})
                yield _event("[DONE]")
                finished = True
                return
    finally:
        if not finished:  # the client went away or an error ended the stream: free the worker
            await sync_to_async(inference_stop)(request_id=request_id)
