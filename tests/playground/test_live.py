"""The playground websocket with real parts: the ASGI server, Redis, a Celery worker on queue `inference`."""
import json

import pytest
from websockets.sync.client import connect

from apps.playground.jobs import chat_model_ref
from apps.playground.selectors import chat_model_get_for_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
QUESTION = "Where does item2 live?"


def ws_connect(server, models, cookie=None):
    query = "&".join(f"model={m}" for m in models)
    headers = {"Origin": server, **({"Cookie": f"sessionid={cookie}"} if cookie else {})}
    return connect(f"{server.replace('http', 'ws', 1)}/ws/playground/?{query}", additional_headers=headers, open_timeout=10)


def collect(ws, columns, timeout=120):
    """Messages until every column in `columns` is done (or failed)."""
    messages, open_columns = [], set(columns)
    while open_columns:
        message = json.loads(ws.recv(timeout=timeout))
        messages.append(message)
        if message["type"] in ("done", "error"):
            open_columns.discard(message["column"])
    return messages


def ask(question):
    return [{"role": "user", "content": question}]


def test_it_streams_the_answers_of_the_tuned_and_the_base_model_side_by_side(alice, alice_model, worker, server, session_cookie):
    from workers.engine.inference import generate

    tuned, base = str(alice_model.code), f"tiny-gemma3@{alice_model.code}"
    with ws_connect(server, [tuned, base], session_cookie(alice)) as ws:
        ready = json.loads(ws.recv(timeout=10))
        assert ready["type"] == "ready" and [m["id"] for m in ready["models"]] == [tuned, base]
        for column in (0, 1):
            ws.send(json.dumps({"type": "generate", "column": column, "messages": ask(QUESTION), "options": {"max_tokens": 24}}))
        messages = collect(ws, {0, 1})
    for column, model_id in enumerate([tuned, base]):
        mine = [m for m in messages if m.get("column") == column]
        assert [m["type"] for m in mine][:2] == ["queued", "started"] and mine[-1]["type"] == "done", mine
        pieces = [m["text"] for m in mine if m["type"] == "piece"]
        ref = chat_model_ref(chat_model_get_for_user(user=alice, model_id=model_id))
        assert "".join(pieces) == generate(ref, [ask(QUESTION)], max_new_tokens=24)[0]
        assert mine[-1]["usage"]["completion_tokens"] > 0
    tuned_answer = "".join(m["text"] for m in messages if m["type"] == "piece" and m["column"] == 0)
    assert tuned_answer.strip() == "Item2 lives in Oslo."


def test_it_continues_a_conversation_with_its_history(alice, alice_model, worker, server, session_cookie):
    history = ask("Where does item1 live?") + [{"role": "assistant", "content": "Item1 lives in Rome."}] + ask(QUESTION)
    with ws_connect(server, [str(alice_model.code)], session_cookie(alice)) as ws:
        json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"type": "generate", "column": 0, "messages": history, "options": {"max_tokens": 24}}))
        messages = collect(ws, {0})
    assert messages[-1]["type"] == "done" and messages[-1]["usage"]["prompt_tokens"] > 20


def test_it_stops_an_answer_when_asked(alice, alice_model, worker, server, session_cookie):
    with ws_connect(server, [f"tiny-gemma3@{alice_model.code}"], session_cookie(alice)) as ws:
        json.loads(ws.recv(timeout=10))
        # The untrained base model samples random tokens: it would go on to the limit.
        ws.send(json.dumps({"type": "generate", "column": 0, "messages": ask("Hello"),
                            "options": {"max_tokens": 480, "temperature": 1.0}}))
        messages = []
        while not any(m["type"] == "piece" for m in messages):
            messages.append(json.loads(ws.recv(timeout=60)))
        ws.send(json.dumps({"type": "stop"}))
        messages += collect(ws, {0})
    done = messages[-1]
    assert done["type"] == "done" and done["usage"]["finish_reason"] == "stop"
    assert done["usage"]["completion_tokens"] < 480


def test_it_reports_readable_errors_per_column(alice, alice_model, worker, server, session_cookie):
    with ws_connect(server, [str(alice_model.code)], session_cookie(alice)) as ws:
        json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"type": "generate", "column": 0, "messages": ask("word " * 2000)}))  # over the 512-token limit
        assert json.loads(ws.recv(timeout=10))["type"] == "queued"
        error = collect(ws, {0})[-1]
        ws.send(json.dumps({"type": "generate", "column": 0, "messages": ask("hi"), "options": {"temperature": 9}}))
        invalid = json.loads(ws.recv(timeout=10))
    assert error["type"] == "error" and "too long for this model" in error["message"]
    assert invalid == {"type": "error", "column": 0, "message": "temperature must be at least 0.0 and at most 2.0."}


def test_it_refuses_a_strangers_websocket(alice, bob, alice_model, server, session_cookie):
    for cookie in (session_cookie(bob), None):
        with pytest.raises(Exception) as refused, ws_connect(server, [str(alice_model.code)], cookie) as ws:
            ws.recv(timeout=5)
        assert "4404" in str(refused.value) or "403" in str(refused.value)
    with ws_connect(server, [str(alice_model.code)], session_cookie(alice)) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"
