"""The one judge module (workers.common.judge): its salvage parser reads every form the old parsers of GRPO's judge,
the held-out judge and the curation judge read, it asks for structured output where the endpoint takes it and
falls back once (against the local chat server) where it does not, and rubrics are checked and added the same way."""
import json

import pytest

from tests.fakes.chat_server import Reply
from workers.common.errors import ReadableError
from workers.common.judge import (
    MAX_RUBRIC,
    StructuredJudge,
    fraction,
    parse_score,
    parse_scores,
    ratings_schema,
    rubric_block,
    rubric_text,
    score_schema,
)
from workers.common.llm import ChatClient

# --- reading ---------------------------------------------------------------------------------------------------------

# What GRPO's reward judge read (workers.common.rewards.parse_judgement): a 0-10 score, scaled to 0-1; x/N by N.
REWARD_FORMS = [
    ('{"score": 7, "reason": "fine"}', 0.7), ("```json\n{\"score\": 10}\n```", 1.0), ("Score: 4/5", 0.8),
    ("score = 3", 0.3), ("9", 0.9), ("8/10.", 0.8), ("I would give it a 7 out of 10", None), ("", None),
    ('{"score": 11}', None), ('{"score": "high"}', None), ("Score: -1", None), ("great answer!", None),
]
# What the held-out judge read (workers.engine.evaluate.heldout.parse_judge_score): the same scale, and <think> blocks.
HELDOUT_FORMS = [
    ('{"score": 7}', 0.7), ('```json\n{"score": 10}\n```', 1.0), ('<think>The answer is close.</think>{"score": 3}', 0.3),
    ("Score: 8", 0.8), ("6/10", 0.6), ("9", 0.9), ('{"score": 11}', None), ('{"score": "great"}', None),
    ("I would say it is quite good.", None), ("", None), (None, None),
    # Near-misses both old parsers took: a quoted number, a score in prose around the JSON.
    ('{"score": "7"}', 0.7), ('Here is my rating: {"score": 6} as asked.', 0.6), ('"score": 5', 0.5),
]


@pytest.mark.parametrize("text, expected", REWARD_FORMS + HELDOUT_FORMS)
def test_it_reads_a_single_score_in_every_form_the_old_judges_read(text, expected):
    assert fraction(parse_score(text)) == (None if expected is None else pytest.approx(expected))


# What the curation judge read (workers.engine.data.curate.parse_ratings): 1-10 ratings by pair number.
@pytest.mark.parametrize("text, count, expected", [
    ('[{"id": 1, "rating": 8}, {"id": 2, "rating": "3"}]', 2, {1: 8.0, 2: 3.0}),
    ('```json\n[{"id": 2, "rating": 9}, {"id": 1, "rating": 4}]\n```', 2, {1: 4.0, 2: 9.0}),
    ('Sure! [{"id": 1, "rating": 7.5}] Hope this helps.', 1, {1: 7.5}),
    ('[8, 2]', 2, {1: 8.0, 2: 2.0}),
    ('{"id": 1, "rating": 6}, {"id": 2, "rating": 5', 2, {1: 6.0, 2: 5.0}),
    ("Rating: 9/10", 1, {1: 9.0}),
    ("I would rate it highly.", 1, {}),
    ('[{"id": 1, "rating": 42}, {"id": 7, "rating": 5}]', 2, {}),
    (None, 1, {}),
    ('[{"id": 1, "score": 6}, {"rating": 4}]', 2, {1: 6.0, 2: 4.0}),  # "score" for "rating", the id from the order
    ('[{"id": 1, "rating": 3}, {"id": 2, "rating": "lots"}]', 2, {1: 3.0}),
    ("7", 1, {1: 7.0}),
    # The structured shape (ratings_schema), with or without fences.
    ('{"ratings": [{"id": 1, "rating": 8}, {"id": 2, "rating": 2}]}', 2, {1: 8.0, 2: 2.0}),
    ('```\n{"ratings": [{"id": 2, "rating": 10}]}\n```', 2, {2: 10.0}),
    # A lone score without an id cannot say which of several pairs it rates.
    ('{"rating": 6}', 2, {}),
    ('{"score": 0}', 1, {}),  # below the curation scale (1 to 10)
])
def test_it_reads_batch_ratings_in_every_form_the_old_curation_judge_read(text, count, expected):
    assert parse_scores(text, count, low=1, high=10) == expected


def test_one_parser_serves_both_scales():
    assert parse_score('{"score": 0}') == 0.0 and parse_score('{"score": 0}', low=1) is None
    assert parse_score("Score: 12/20") == 6.0 and parse_score("Score: 7 out of 10") == 7.0
    assert parse_score('{"score": true}') is None and parse_score('{"score": NaN}') is None


# --- rubrics ---------------------------------------------------------------------------------------------------------

def test_a_rubric_is_bounded_and_adds_nothing_when_empty():
    assert rubric_text("  Answers must cite a page.  ") == "Answers must cite a page." and rubric_text(None) == ""
    assert rubric_block("") == "" and rubric_block("   ") == "" and rubric_block(None) == ""
    assert "Answers must cite a page." in rubric_block("Answers must cite a page.")
    assert len(rubric_text("x" * MAX_RUBRIC)) == MAX_RUBRIC
    with pytest.raises(ReadableError, match="too long"):
        rubric_text("x" * (MAX_RUBRIC + 1))
    with pytest.raises(ReadableError, match="must be text"):
        rubric_text(["no"])


# --- asking ----------------------------------------------------------------------------------------------------------

def conversations(n):
    return [[{"role": "user", "content": f"Rate answer {i}."}] for i in range(n)]


def send_for(server, **kwargs):
    client = ChatClient(server.url, model=server.model, max_retries=0, **kwargs)
    return lambda conversations, **params: client.complete_many(conversations, temperature=0, **params)


def test_it_asks_for_structured_output_where_the_endpoint_takes_it(chat_server):
    chat_server.responder = lambda request: Reply.text('{"score": 8}')
    judge, send = StructuredJudge(), send_for(chat_server)
    results = judge.ask(send, conversations(3), name="rating", schema=score_schema(integer=True))
    assert [parse_score(r.text) for r in results] == [8.0, 8.0, 8.0] and [r.index for r in results] == [0, 1, 2]
    assert judge.structured is True and len(chat_server.chat_requests) == 3
    for request in chat_server.chat_requests:
        assert request.body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "rating", "schema": score_schema(integer=True)}}
        assert request.body["temperature"] == 0


@pytest.mark.parametrize("status", [400, 422])
def test_it_falls_back_once_where_the_endpoint_refuses_structured_output(chat_server, status):
    chat_server.refuse_response_format = status
    chat_server.responder = lambda request: Reply.text("Score: 6")
    judge, send = StructuredJudge(), send_for(chat_server, concurrency=4)
    results = judge.ask(send, conversations(4), name="ratings", schema=ratings_schema(4))
    assert [parse_score(r.text) for r in results] == [6.0] * 4 and all(r.ok for r in results)
    # One request, sent alone, learnt it; it was resent without the option, and the others never carried it.
    assert chat_server.refused == 1 and judge.structured is False
    bodies = [r.body for r in chat_server.chat_requests]
    assert len(bodies) == 5 and "response_format" in bodies[0]
    assert all("response_format" not in body for body in bodies[1:])
    assert bodies[1]["messages"] == conversations(1)[0]  # the refused conversation, asked again
    # Remembered: later asks do not try again.
    assert [parse_score(r.text) for r in judge.ask(send, conversations(2), name="ratings", schema={})] == [6.0, 6.0]
    assert chat_server.refused == 1 and len(chat_server.chat_requests) == 7


def test_it_does_not_resend_other_refusals_or_anything_after_a_refused_key(chat_server):
    chat_server.script(Reply.status(400, "The prompt is too long for this model's context."))
    judge, send = StructuredJudge(), send_for(chat_server)
    chat_server.responder = lambda request: Reply.text('{"score": 5}')
    results = judge.ask(send, conversations(2), name="rating", schema=score_schema())
    assert not results[0].ok and "400 Bad Request" in results[0].error and parse_score(results[1].text) == 5.0
    assert len(chat_server.chat_requests) == 2 and judge.structured is True  # not taken for a refused option
    assert all("response_format" in r.body for r in chat_server.chat_requests)

    chat_server.api_key = "sk-right-0123456789"
    refused = StructuredJudge().ask(send, conversations(3), name="rating", schema=score_schema())
    assert [r.status for r in refused] == [401] * 3 and all("refused the API key" in r.error for r in refused)
    assert len(chat_server.chat_requests) == 3  # one more request: the others were not sent


def test_the_client_names_the_refused_option_but_never_repeats_the_body(chat_server):
    chat_server.refuse_response_format = 400
    with ChatClient(chat_server.url, model=chat_server.model, max_retries=0) as client:
        result = client.call(conversations(1)[0], response_format={"type": "json_object"}, temperature=0)
        other = client.call(conversations(1)[0], temperature=0)
    assert result.status == 400 and result.refused_options == ("response_format",)
    assert "Invalid parameter" not in result.error and other.ok and other.refused_options == ()


def test_a_transport_that_answers_text_is_asked_without_fuss():
    seen = []

    def send(conversations, **params):
        seen.append(params)
        return [json.dumps({"ratings": [{"id": 1, "rating": 9}]}) for _ in conversations]

    answers = StructuredJudge().ask(send, conversations(2), name="ratings", schema=ratings_schema(1))
    assert [parse_scores(a, 1) for a in answers] == [{1: 9.0}, {1: 9.0}]
    assert all(p["response_format"]["json_schema"]["schema"] == ratings_schema(1) for p in seen)
