"""Websocket of the playground page: the user's prompts go to inference workers, their answers come back as pieces.

The page opens one socket for its columns (`/ws/playground/?model=<id>&model=<id>`). Every model is authorized in
connect() with the selector the page uses; one that is not the user's closes the socket with 4404 before any work.
Client → server: {"type": "generate", "column": i, "messages": [...], "options": {...}}, {"type": "stop",
"column": i (or none for all)}, {"type": "ping"}. Server → client: ready, queued, started, piece, done, error
(each with its column), pong."""
import asyncio
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.accounts.throttling import throttle_wait, throttled_message
from apps.playground.selectors import chat_model_get_for_user
from apps.playground.services import inference_enqueue, inference_messages, inference_options, inference_stop

CLOSE_NOT_FOUND = 4404  # the same answer as the pages' 404
CLOSE_BAD_REQUEST = 4400
MAX_COLUMNS = 4


class PlaygroundConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.active = {}  # request id -> {"column": i, "started": bool}
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        ids = parse_qs(self.scope.get("query_string", b"").decode()).get("model", [])
        if not 1 <= len(ids) <= MAX_COLUMNS:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        try:
            self.models = [await database_sync_to_async(chat_model_get_for_user)(user=user, model_id=i) for i in ids]
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.user = user
        await self.accept()
        await self.send_json({"type": "ready", "models": [m.as_dict() for m in self.models]})

    async def disconnect(self, close_code):
        for request_id in list(self.active):
            await database_sync_to_async(inference_stop)(request_id=request_id)
        self.active.clear()

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "generate":
            await self._generate(content)
        elif kind == "stop":
            column = content.get("column")
            for request_id, state in list(self.active.items()):
                if column is None or state["column"] == column:
                    await database_sync_to_async(inference_stop)(request_id=request_id)

    async def _generate(self, content):
        column = content.get("column")
        if not isinstance(column, int) or isinstance(column, bool) or not 0 <= column < len(self.models):
            await self.send_json({"type": "error", "column": None, "message": "There is no such column."})
            return
        try:
            messages = inference_messages(content.get("messages"))
            options = inference_options(content.get("options") if isinstance(content.get("options"), dict) else {})
        except ValidationError as exc:
            await self.send_json({"type": "error", "column": column, "message": " ".join(exc.messages)})
            return
        # Each prompt costs a worker's time: counted per user, like the OpenAI-compatible endpoint.
        wait = await sync_to_async(throttle_wait)(scope="playground", ident=f"user:{self.user.pk}")
        if wait:
            await self.send_json({"type": "error", "column": column, "retry_after": wait,
                                  "message": throttled_message(wait, "prompts")})
            return
        for request_id, state in list(self.active.items()):  # a new prompt replaces the column's running answer
            if state["column"] == column:
                del self.active[request_id]
                await database_sync_to_async(inference_stop)(request_id=request_id)
        request_id = await database_sync_to_async(inference_enqueue)(
            user=self.user, model=self.models[column], messages=messages, options=options, reply_to=self.channel_name)
        self.active[request_id] = {"column": column, "started": False}
        await self.send_json({"type": "queued", "column": column, "request": request_id})
        asyncio.ensure_future(self._watch(request_id))

    async def _watch(self, request_id):
        """No worker took the request in time (none runs the inference queue, or all are busy): say so."""
        await asyncio.sleep(settings.GARAGE_INFERENCE_TIMEOUT)
        state = self.active.get(request_id)
        if state is not None and not state["started"]:
            del self.active[request_id]
            await database_sync_to_async(inference_stop)(request_id=request_id)
            await self.send_json({"type": "error", "column": state["column"], "message": (
                f"No inference worker answered within {settings.GARAGE_INFERENCE_TIMEOUT:g} seconds. "
                "Check that a worker serves the 'inference' queue, or try again when it is less busy.")})

    # Messages from the worker (see apps.playground.services); those of replaced or stopped requests are dropped.
    async def inference_started(self, message):
        state = self.active.get(message["request"])
        if state is not None:
            state["started"] = True
            await self.send_json({"type": "started", "column": state["column"], "load_seconds": message.get("load_seconds")})

    async def inference_piece(self, message):
        state = self.active.get(message["request"])
        if state is not None:
            await self.send_json({"type": "piece", "column": state["column"], "text": message["text"]})

    async def inference_done(self, message):
        state = self.active.pop(message["request"], None)
        if state is not None:
            await self.send_json({"type": "done", "column": state["column"], "usage": message.get("usage", {}),
                                  "tokens_per_s": message.get("tokens_per_s")})

    async def inference_error(self, message):
        state = self.active.pop(message["request"], None)
        if state is not None:
            await self.send_json({"type": "error", "column": state["column"], "message": message["message"]})
