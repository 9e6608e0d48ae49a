"""A real OpenAI-compatible chat-completions server for tests, on a free local port.

It speaks the protocol the way vLLM, Ollama and OpenAI do (POST /v1/chat/completions, GET /v1/models,
Bearer keys, OpenAI-style error bodies), records every request, tracks how many were in flight at once,
and answers from a script that each test writes:

    def test_something(chat_server):
        chat_server.api_key = "sk-test-1234567890"            # requests without it get 401
        chat_server.script(Reply.status(429, headers={"Retry-After": "1"}), Reply.pairs(2))
        client = ChatClient(chat_server.url, api_key="sk-test-1234567890", model=chat_server.model)
        ...
        assert chat_server.requests[0].headers["authorization"] == "Bearer sk-test-1234567890"
        assert chat_server.max_concurrent <= 3

Scripted replies are used in order; once they run out, `responder(request)` answers (by default: as many
well-formed pairs as the prompt asks for, made from the passage).

A server without structured output: `chat_server.refuse_response_format = 400` (or 422) answers every request that
carries `response_format` with that status and an error naming the option, as llama.cpp, older vLLM and many hosted
endpoints do, without using a scripted reply; `chat_server.refused` counts those answers."""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    status_code: int = 200
    content: str | None = None  # the assistant's message, for a 200
    body: object = None  # a raw body (bytes, str or JSON-able) instead of a chat completion
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow server)

    @classmethod
    def text(cls, content: str, **kwargs) -> Reply:
        return cls(content=content, **kwargs)

    @classmethod
    def pairs(cls, n: int, prefix: str = "Q", **kwargs) -> Reply:
        items = [{"question": f"{prefix}{i + 1}: what is item {i + 1}?", "answer": f"Item {i + 1} is fine."} for i in range(n)]
        return cls(content=json.dumps(items), **kwargs)

    @classmethod
    def status(cls, code: int, message: str = "", **kwargs) -> Reply:
        body = {"error": {"message": message or f"Error {code}", "type": "server_error", "code": code}}
        return cls(status_code=code, body=body, **kwargs)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict  # lower-case names
    raw: bytes
    body: dict | None
    started: float
    finished: float = 0.0

    @property
    def messages(self) -> list[dict]:
        return (self.body or {}).get("messages", [])

    @property
    def text(self) -> str:
        """All message content of the request, joined: what left the client."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


_WANTED = re.compile(r"Write (\d+) question-answer pair")
_PASSAGE = re.compile(r'Passage:\n"""\n(.*?)\n"""', re.DOTALL)


def default_responder(request: RecordedRequest) -> Reply:
    """As many well-formed pairs as the prompt asks for, made from the passage's words, so that pairs of
    different chunks differ."""
    text = request.text
    wanted = int(m.group(1)) if (m := _WANTED.search(text)) else 3
    passage = m.group(1) if (m := _PASSAGE.search(text)) else text
    words = " ".join(passage.split()[:6]) or "the passage"
    items = [{"question": f"What does “{words}” say, point {i + 1}?", "answer": f"It says {words} ({i + 1})."}
             for i in range(wanted)]
    return Reply(content=json.dumps(items))


class ChatServer:
    def __init__(self, *, model: str = "fake-model", api_key: str | None = None):
        self.model = model
        self.api_key = api_key  # when set, requests must carry "Authorization: Bearer <api_key>"
        self.known_models: set[str] | None = {model}  # None accepts any model name
        self.requests: list[RecordedRequest] = []
        self.responder = default_responder
        self.max_concurrent = 0
        # A status (400 or 422) for requests carrying response_format: an endpoint without structured output.
        self.refuse_response_format: int | None = None
        self.refused = 0
        self._in_flight = 0
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for the next poll, and every test stops a server.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-chat-server", daemon=True)

    @property
    def url(self) -> str:
        """The base URL clients are given (like vLLM's http://host:8000/v1)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- serving -------------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(method=method, path=handler.path, raw=raw, body=body, started=time.monotonic(),
                                  headers={k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight)
        done = False

        def finish():
            nonlocal done
            if not done:
                done = True
                request.finished = time.monotonic()
                with self._lock:
                    self._in_flight -= 1

        try:
            reply = self._reply(request)
            if reply.delay:
                time.sleep(reply.delay)
            # Count the request as finished before its answer goes out: once the client has the answer it may
            # send its next request at once, and counting both would overstate the client's concurrency.
            finish()
            self._send(handler, request, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer
        finally:
            finish()

    def _reply(self, request: RecordedRequest) -> Reply:
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            # Like OpenAI, quote the key that was sent: clients must not pass that on to their users.
            sent = request.headers.get("authorization", "").removeprefix("Bearer ")
            return Reply(status_code=401, body={"error": {"message": f"Incorrect API key provided: {sent}.",
                                                          "type": "invalid_request_error", "code": "invalid_api_key"}})
        if request.method == "GET":
            if request.path.rstrip("/") == "/v1/models":
                return Reply(body={"object": "list", "data": [{"id": self.model, "object": "model"}]})
            return Reply.status(404, "Not found")
        if request.path.split("?")[0] != "/v1/chat/completions":
            return Reply.status(404, f"No route {request.path}")
        if request.body is None or not isinstance(request.body.get("messages"), list):
            return Reply.status(400, "The body must be JSON with a `messages` list.")
        model = request.body.get("model")
        if self.known_models is not None and model not in self.known_models:
            return Reply.status(404, f"The model `{model}` does not exist.")
        if self.refuse_response_format and "response_format" in request.body:
            with self._lock:
                self.refused += 1
            response_format = request.body["response_format"]
            kind = response_format.get("type") if isinstance(response_format, dict) else response_format
            return Reply(status_code=self.refuse_response_format, body={"error": {
                "message": f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
                "type": "invalid_request_error", "param": "response_format", "code": None}})
        with self._lock:
            scripted = self._script.pop(0) if self._script else None
        return scripted or self.responder(request)

    def _send(self, handler: BaseHTTPRequestHandler, request: RecordedRequest, reply: Reply) -> None:
        if reply.body is not None:
            payload = reply.body
        else:
            payload = {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": (request.body or {}).get("model", self.model),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply.content or ""}}],
                "usage": {"prompt_tokens": len(request.text) // 4, "completion_tokens": len(reply.content or "") // 4},
            }
        data = payload if isinstance(payload, bytes) else (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        handler.send_response(reply.status_code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def chat_server():
    """A fresh fake OpenAI-compatible server per test (see ChatServer); yields it, running."""
    with ChatServer() as server:
        yield server


class PromptTaskResponder:
    """A responder for prompt-optimization tests: it plays both the task model and the reflection model.

    As the task model it knows every answer in `answers` ({question: answer}) but gives it bare only when the system
    prompt contains `instruction`; otherwise it wraps it in chatter ("Well, I believe the answer is Paris, I think."),
    which exact match scores 0 and token F1 below 1. As the reflection model (a request asking for a new system
    prompt) it answers the next of `proposals` (the last one again once they run out), by default a prompt that
    carries the instruction. `reflections` counts the reflection requests it saw."""

    REFLECTION_MARK = "write a new system prompt"

    def __init__(self, answers: dict[str, str], *, instruction: str = "Answer in one word.",
                 proposals: list[str] | None = None):
        self.answers, self.instruction = answers, instruction
        self.proposals = list(proposals) if proposals is not None else [f"```\nYou answer questions. {instruction}\n```"]
        self.reflections = 0
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        messages = request.messages
        if any(self.REFLECTION_MARK in str(m.get("content", "")) for m in messages):
            with self._lock:
                proposal = self.proposals[min(self.reflections, len(self.proposals) - 1)]
                self.reflections += 1
            return proposal if isinstance(proposal, Reply) else Reply(content=proposal)
        system = " ".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
        question = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")
        answer = self.answers.get(question, "I do not know")
        if self.instruction.lower() in system.lower():
            return Reply(content=answer)
        return Reply(content=f"Well, I believe the answer is {answer}, I think.")
