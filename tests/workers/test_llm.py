"""The OpenAI-compatible chat client against a real local server speaking the protocol."""
import logging
import random
import threading
import time

import pytest

from tests.fakes.chat_server import Reply
from workers.common.llm import (
    ChatClient,
    LLMError,
    backoff_delay,
    normalise_base_url,
    parse_retry_after,
)

KEY = "sk-test-abcdefghijklmnop1234"
HELLO = [{"role": "user", "content": "Say hello."}]


def client_for(server, **kwargs):
    kwargs = {"base_url": server.url, "api_key": KEY, "model": server.model, "timeout": 5, "max_retries": 3,
              "concurrency": 2, "backoff_base": 0.01, "backoff_max": 0.05, **kwargs}
    return ChatClient(**kwargs)


def test_it_completes_a_chat_sending_the_key_only_in_the_authorization_header(chat_server):
    chat_server.api_key = KEY
    chat_server.script(Reply.text("Hello there."))
    with client_for(chat_server) as client:
        assert client.complete(HELLO, temperature=0.2, max_tokens=7) == "Hello there."
    request = chat_server.chat_requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {"model": "fake-model", "messages": HELLO, "temperature": 0.2, "max_tokens": 7, "stream": False}
    assert KEY.encode() not in request.raw and KEY not in request.path


def test_it_accepts_the_full_endpoint_url_as_the_base_url(chat_server):
    assert normalise_base_url("http://h:8000/v1/chat/completions/") == "http://h:8000/v1"
    with client_for(chat_server, base_url=chat_server.url + "/chat/completions") as client:
        assert client.complete(HELLO)
    assert chat_server.chat_requests[0].path == "/v1/chat/completions"


def test_it_retries_a_429_after_the_time_the_server_asks_for(chat_server):
    chat_server.script(Reply.status(429, "Slow down", headers={"Retry-After": "1"}), Reply.text("Done."))
    with client_for(chat_server) as client:
        result = client.call(HELLO)
    assert result.ok and result.text == "Done." and result.attempts == 2 and result.status == 200
    first, second = chat_server.chat_requests
    # Our own backoff is at most 0.05 s here, so the one-second wait can only come from Retry-After.
    assert second.started - first.finished >= 0.95


def test_it_retries_server_errors_and_gives_up_readably(chat_server):
    chat_server.script(Reply.status(500), Reply.status(502), Reply.text("Recovered."))
    with client_for(chat_server) as client:
        assert client.complete(HELLO) == "Recovered."
        chat_server.script(*[Reply.status(503, "Overloaded")] * 4)
        result = client.call(HELLO)
    assert not result.ok and result.attempts == 4 and result.status == 503
    assert "server error (503)" in result.error and "4 attempts" in result.error
    assert "Overloaded" not in result.error  # the server's own words are never repeated
    assert len(chat_server.chat_requests) == 7


def test_it_retries_a_request_that_times_out(chat_server):
    chat_server.script(Reply.text("Too late.", delay=1.5), Reply.text("In time."))
    with client_for(chat_server, timeout=0.5) as client:
        result = client.call(HELLO)
    assert result.ok and result.text == "In time." and result.attempts == 2


def test_it_waits_with_jittered_exponential_backoff():
    rng = random.Random(1)
    delays = [backoff_delay(attempt, base=1.0, cap=8.0, rng=rng) for attempt in range(1, 7)]
    for attempt, delay in enumerate(delays, start=1):
        window = min(8.0, 2 ** (attempt - 1))
        assert window / 2 <= delay <= window
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder
    assert backoff_delay(1, base=1.0, cap=8.0, retry_after=5.0) == 5.0
    assert parse_retry_after("3") == 3.0 and parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert 9 <= parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480) <= 11


@pytest.mark.parametrize("setup,expected", [
    ("wrong key", "refused the API key (401"),
    ("unknown model", "404 Not Found: check the base URL"),
    ("wrong path", "404 Not Found: check the base URL"),
])
def test_it_explains_refusals_without_retrying_or_echoing_the_key(chat_server, caplog, setup, expected):
    chat_server.api_key = "sk-the-right-one-000000"
    kwargs = {"api_key": "sk-the-right-one-000000"}
    if setup == "wrong key":
        kwargs["api_key"] = KEY  # the server quotes this key back in its error body
    elif setup == "unknown model":
        kwargs["model"] = "no-such-model"
    else:
        kwargs["base_url"] = chat_server.url.removesuffix("/v1") + "/v2"
    caplog.set_level(logging.DEBUG)
    with client_for(chat_server, **kwargs) as client, pytest.raises(LLMError) as error:
        client.complete(HELLO)
    assert expected in error.value.message
    assert len(chat_server.chat_requests) == 1 or setup == "wrong path"
    assert KEY not in str(error.value) and "sk-the-right-one" not in str(error.value)
    assert KEY not in caplog.text and "sk-the-right-one" not in caplog.text
    assert "It said" not in error.value.message  # the response body is never repeated


def test_it_explains_an_unreachable_endpoint(chat_server):
    url = chat_server.url
    chat_server.stop()
    with client_for(chat_server, base_url=url, max_retries=1) as client:
        result = client.call(HELLO)
    assert not result.ok and result.status is None and result.attempts == 2
    assert "Could not reach the endpoint" in result.error


def test_it_keeps_the_key_out_of_its_repr():
    assert KEY not in repr(ChatClient("http://127.0.0.1:9/v1", api_key=KEY, model="m"))


def test_it_runs_many_requests_within_the_concurrency_bound_and_keeps_their_order(chat_server):
    def responder(request):
        number = request.text.split()[-1]
        return Reply.text(f"answer {number}", delay=0.15)

    chat_server.responder = responder
    seen_in = set()
    calls = []

    def on_result(result):
        seen_in.add(threading.get_ident())
        calls.append(result.index)

    conversations = [[{"role": "user", "content": f"question {i}"}] for i in range(9)]
    with client_for(chat_server, concurrency=3) as client:
        started = time.monotonic()
        results = client.complete_many(conversations, on_result=on_result, temperature=0)
        elapsed = time.monotonic() - started
    assert [r.text for r in results] == [f"answer {i}" for i in range(9)]
    assert chat_server.max_concurrent == 3
    assert elapsed < 9 * 0.15  # ran side by side, not one after another
    assert seen_in == {threading.get_ident()}  # callbacks run in the calling thread
    assert sorted(calls) == list(range(9))
    assert all(r.characters_sent == len(f"question {r.index}") for r in results)


def test_it_stops_sending_a_batch_after_a_refused_key(chat_server):
    chat_server.api_key = "sk-the-right-one-000000"
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(20)]
    with client_for(chat_server, concurrency=2) as client:
        results = client.complete_many(conversations)
    assert all(not r.ok and "refused the API key" in r.error for r in results)
    assert len(chat_server.chat_requests) <= 3  # the ones already in flight, not all twenty
    assert sum(r.attempts for r in results) == len(chat_server.chat_requests)


def test_it_stops_a_batch_when_the_callback_raises(chat_server):
    class Stop(Exception):
        pass

    def on_result(result):
        raise Stop()

    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(20)]
    with client_for(chat_server, concurrency=2) as client, pytest.raises(Stop):
        client.complete_many(conversations, on_result=on_result)
    assert len(chat_server.chat_requests) < 20


def test_it_reads_content_given_as_parts_and_refuses_non_chat_answers(chat_server):
    chat_server.script(Reply(body={"choices": [{"message": {"content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}}]}),
                       Reply(body="<html>not an API</html>"))
    with client_for(chat_server) as client:
        assert client.complete(HELLO) == "AB"
        with pytest.raises(LLMError, match="not a chat completion"):
            client.complete(HELLO)


def test_it_still_reports_requests_already_sent_when_the_callback_stops_a_batch(chat_server):
    chat_server.responder = lambda request: Reply.text("ok", delay=0.1)
    seen = []

    def on_result(result):
        seen.append(result.index)
        if len(seen) == 1:
            raise KeyError("stop")

    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
    with client_for(chat_server, concurrency=3) as client, pytest.raises(KeyError):
        client.complete_many(conversations, on_result=on_result)
    # Every request that reached the server was reported, none twice, and the rest were never sent.
    assert len(seen) == len(set(seen)) == len(chat_server.chat_requests) < 12


def test_it_does_not_follow_redirects_with_the_key(chat_server):
    chat_server.script(Reply(status_code=307, headers={"Location": "http://elsewhere.example/v1/chat/completions"}, body=b""))
    with client_for(chat_server) as client, pytest.raises(LLMError, match="redirects \\(307\\) to http://elsewhere.example"):
        client.complete(HELLO)
    assert len(chat_server.requests) == 1
