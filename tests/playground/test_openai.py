"""The OpenAI-compatible endpoint used by the real `openai` client, against the live server and worker."""
import httpx
import openai
import pytest
from django.test import override_settings

from apps.accounts.services import api_token_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
QUESTION = [{"role": "user", "content": "Where does item5 live?"}]


@pytest.fixture
def alice_openai(alice, server):
    _, secret = api_token_create(user=alice, name="openai client")
    return openai.OpenAI(base_url=f"{server}/v1", api_key=secret, max_retries=0, timeout=120)


@pytest.fixture
def bob_openai(bob, server):
    _, secret = api_token_create(user=bob, name="openai client")
    return openai.OpenAI(base_url=f"{server}/v1", api_key=secret, max_retries=0, timeout=120)


def test_it_lists_the_users_tuned_models_and_their_bases(alice_openai, bob_openai, alice_model):
    ids = [m.id for m in alice_openai.models.list()]
    # Her tuned model and its base first; then the real models installed on the server, everyone's to try.
    assert ids[:2] == [str(alice_model.code), f"tiny-gemma3@{alice_model.code}"]
    assert alice_openai.models.retrieve(str(alice_model.code)).owned_by == "you"
    installed = [m.id for m in bob_openai.models.list()]
    assert ids[2:] == installed and not any(str(alice_model.code) in model_id for model_id in installed)
    assert all(m.owned_by == "base model" for m in bob_openai.models.list())


def test_it_answers_a_chat_completion(alice_openai, alice_model, worker):
    completion = alice_openai.chat.completions.create(model=str(alice_model.code), messages=QUESTION, max_tokens=24,
                                                      temperature=0)
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip() == "Item5 lives in Tokyo."
    assert choice.finish_reason == "stop" and completion.model == str(alice_model.code)
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    base = alice_openai.chat.completions.create(model=f"tiny-gemma3@{alice_model.code}", messages=QUESTION, max_tokens=5)
    assert base.choices[0].finish_reason == "length" and base.usage.completion_tokens == 5


def test_it_streams_a_chat_completion(alice_openai, alice_model, worker):
    kwargs = dict(model=str(alice_model.code), messages=QUESTION, max_tokens=24)
    whole = alice_openai.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(alice_openai.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole and len(pieces) >= 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_it_hides_alices_model_from_bob(bob_openai, alice_model, worker):
    for model in (str(alice_model.code), f"tiny-gemma3@{alice_model.code}", "no-such-model"):
        with pytest.raises(openai.NotFoundError) as error:
            bob_openai.chat.completions.create(model=model, messages=QUESTION)
        assert error.value.code == "model_not_found" and error.value.status_code == 404
    with pytest.raises(openai.NotFoundError):
        bob_openai.models.retrieve(str(alice_model.code))


def test_it_refuses_missing_and_invalid_tokens(alice_model, server):
    stranger = openai.OpenAI(base_url=f"{server}/v1", api_key="gg_not-a-real-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as error:
        stranger.chat.completions.create(model=str(alice_model.code), messages=QUESTION)
    assert error.value.code == "invalid_api_key" and "gg_not-a-real-token" not in error.value.message
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    for headers in ({}, {"Authorization": "Basic abc"}):
        response = httpx.post(f"{server}/v1/chat/completions", json={"model": str(alice_model.code), "messages": QUESTION},
                              headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server}/v1/models").status_code == 401


def test_it_explains_bad_requests(alice_openai, alice_model, worker, server):
    model = str(alice_model.code)
    for kwargs, param in [({"temperature": 5}, "temperature"), ({"top_p": 0}, "top_p"), ({"max_tokens": 0}, "max_tokens")]:
        with pytest.raises(openai.BadRequestError) as error:
            alice_openai.chat.completions.create(model=model, messages=QUESTION, **kwargs)
        assert error.value.param == param
    with pytest.raises(openai.BadRequestError, match="last message"):
        alice_openai.chat.completions.create(model=model, messages=QUESTION + [{"role": "assistant", "content": "hm"}])
    with pytest.raises(openai.BadRequestError, match="too long for this model"):  # refused by the worker's tokenizer
        alice_openai.chat.completions.create(model=model, messages=[{"role": "user", "content": "word " * 2000}])
    response = httpx.post(f"{server}/v1/chat/completions", content=b"{not json", headers={
        "Authorization": f"Bearer {alice_openai.api_key}", "Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_it_answers_504_when_no_worker_takes_the_request(alice, alice_model, client):
    _, secret = api_token_create(user=alice, name="t")
    # A queue no worker serves: the request waits for GARAGE_INFERENCE_TIMEOUT, then gives up readably.
    with override_settings(GARAGE_INFERENCE_QUEUE="nobody-serves-this", GARAGE_INFERENCE_TIMEOUT=0.5):
        response = client.post("/v1/chat/completions", {"model": str(alice_model.code), "messages": QUESTION},
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout" and "No inference worker answered" in response.json()["error"]["message"]
