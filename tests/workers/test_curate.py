"""The curation engine: duplicates, length limits and the judge (against a real local chat server)."""
import json
import random
import re
import time

import pytest

from tests.fakes.chat_server import Reply
from workers.common.curation import CurateConfig
from workers.engine.data.curate import curate, find_duplicates, judge_messages
from workers.common.errors import Cancelled, ReadableError
from workers.common.llm import ChatClient
from workers.common.records import Example
from workers.engine.reporting import RecordingReporter


def ex(question, answer="A sufficiently long answer."):
    return Example(question=question, answer=answer)


def test_it_removes_exact_duplicates_whatever_their_case_spacing_and_punctuation():
    questions = ["What is the capital of France?", "what is the capital of   france", "WHAT IS THE CAPITAL OF FRANCE!!"]
    assert find_duplicates(questions, near=False) == {1: ("exact_duplicate", 0), 2: ("exact_duplicate", 0)}


def test_it_removes_rewordings_but_keeps_different_questions():
    questions = ["What is the capital of France?", "What's the capital of France?", "What is the capital of Spain?",
                 "How many moons does Mars have?", "How many moons has Mars got?"]
    duplicates = find_duplicates(questions, threshold=0.8)
    assert duplicates == {1: ("near_duplicate", 0)}
    # A looser threshold also catches the second rewording; France and Spain stay two questions at any threshold.
    assert find_duplicates(questions, threshold=0.6) == {1: ("near_duplicate", 0), 4: ("near_duplicate", 3)}
    assert find_duplicates(questions, threshold=0.3) == {1: ("near_duplicate", 0), 4: ("near_duplicate", 3)}
    assert find_duplicates(questions, threshold=0.95) == {}


def test_it_does_not_take_a_shared_template_for_a_duplicate():
    questions = ["What is the population of Lyon?", "What is the population of Nice?", "What happened in 1990?",
                 "What happened in 1991?", "What is the colour of the sky?", "What is the color of the sky?",
                 "What is the population of Lyon, exactly?"]
    # Different names or numbers in the same template are different questions; a spelling or an added word is not.
    assert find_duplicates(questions, threshold=0.5) == {5: ("near_duplicate", 4), 6: ("near_duplicate", 0)}


def test_it_keeps_the_phrasings_of_one_fact_but_not_a_repeated_question():
    questions = ["When was the Tallow Bridge built?", "The Tallow Bridge was built in which year?",
                 "In what year was the Tallow Bridge built?", "When was the Tallow Bridge built?",
                 "In which year was the Tallow Bridge built?"]
    facts = ["bridge", "bridge", "bridge", "bridge", ""]
    # Without fact keys the rewordings look alike; with them, only the repeated question and the pair that
    # stands alone (a rewording of a kept phrasing) go.
    assert find_duplicates(questions, threshold=0.6, facts=facts) == {3: ("exact_duplicate", 0),
                                                                      4: ("near_duplicate", 0)}
    examples = [ex(q, "1612") for q in questions]
    result = curate(examples, CurateConfig(near_threshold=0.6), facts=facts)
    assert result.kept == [0, 1, 2] and [r.reason for r in result.removed] == ["exact_duplicate", "near_duplicate"]


def test_it_keeps_the_earliest_of_duplicates_and_compares_only_with_kept_ones():
    result = curate([ex("Where is the Lumen valley?"), ex("Where is the Lumen valley"), ex("Who founded the valley?")],
                    CurateConfig())
    assert result.kept == [0, 2]
    [removal] = result.removed
    assert removal.index == 1 and removal.reason == "exact_duplicate" and removal.duplicate_of == 0
    assert "Where is the Lumen valley?" in removal.detail


def test_it_applies_length_limits_to_questions_and_answers():
    examples = [ex("Why?", "Because it rains a lot."), ex("What grows in the valley?", "Rice."),
                ex("What grows on the hills?", "x" * 500), ex("What grows by the river?", "Reeds grow by the river.")]
    config = CurateConfig(min_question_chars=10, min_answer_chars=8, max_answer_chars=200)
    result = curate(examples, config)
    assert result.kept == [3]
    assert [(r.index, r.reason) for r in result.removed] == [(0, "too_short"), (1, "too_short"), (2, "too_long")]
    assert result.removed[0].detail == "The question has 4 characters, fewer than 10"
    assert result.counts()["too_short"] == 2 and result.counts()["kept"] == 1


@pytest.mark.parametrize("config, message", [
    (CurateConfig(near_threshold=0), "between 0 and 1"),
    (CurateConfig(judge_threshold=11), "between 1 and 10"),
    (CurateConfig(min_answer_chars=50, max_answer_chars=10), "shortest answer"),
    (CurateConfig(judge=True), "needs a chat model"),
])
def test_it_refuses_impossible_settings_readably(config, message):
    with pytest.raises(ReadableError, match=message):
        curate([ex("A question?")], config)


def test_it_deduplicates_thousands_of_questions_quickly():
    rng = random.Random(7)
    vocabulary = [f"word{i}" for i in range(3000)]
    questions = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(6, 14))) + "?" for _ in range(5000)]
    reworded = [q.replace("?", " exactly?") for q in questions[:300]]
    started = time.monotonic()
    duplicates = find_duplicates(questions + reworded + questions[:200], threshold=0.7)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"took {elapsed:.1f}s"
    exact = {i for i, (reason, _) in duplicates.items() if reason == "exact_duplicate"}
    near = {i for i, (reason, _) in duplicates.items() if reason == "near_duplicate"}
    assert exact == set(range(5300, 5500))
    # Appending a word to a long question keeps it similar; to a short one it may not: most are caught.
    assert len(near & set(range(5000, 5300))) >= 250 and near <= set(range(5000, 5300))


def test_it_stops_when_asked():
    reporter = RecordingReporter(stop_after_metrics=0)
    with pytest.raises(Cancelled):
        curate([ex(f"Question number {i}?") for i in range(10)], CurateConfig(), reporter)


# ---------------------------------------------------------------------------------------------- the judge


# The ratings' forms the judge reads are tested with the one parser, in tests/workers/test_judge.py.


def judge_responder(request):
    """A judge that rates pairs whose answer says "wrong" 2, and all others 9."""
    prompt = request.messages[-1]["content"]
    pairs = re.findall(r"Pair (\d+):\nQuestion: .*?\nAnswer: (.*?)(?=\n\nPair |\Z)", prompt, re.S)
    return Reply.text(json.dumps([{"id": int(n), "rating": 2 if "wrong" in answer else 9} for n, answer in pairs]))


def complete_many_for(server, **kwargs):
    client = ChatClient(server.url, model=server.model, max_retries=0, backoff_base=0.01, **kwargs)
    return lambda conversations, **params: client.complete_many(conversations, temperature=0, **params)


def test_it_sets_aside_pairs_the_judge_rates_below_the_threshold(chat_server):
    chat_server.responder = judge_responder
    examples = [ex(f"Question {i} about the valley?", "This is wrong." if i % 3 == 0 else f"Answer {i}.") for i in range(7)]
    reporter = RecordingReporter()
    result = curate(examples, CurateConfig(judge=True, judge_threshold=5, judge_batch_size=3, task_description="valley facts"),
                    reporter, complete_many=complete_many_for(chat_server))
    assert result.kept == [1, 2, 4, 5]
    assert [(r.index, r.reason) for r in result.removed] == [(0, "low_rating"), (3, "low_rating"), (6, "low_rating")]
    assert result.ratings == {0: 2.0, 1: 9.0, 2: 9.0, 3: 2.0, 4: 9.0, 5: 9.0, 6: 2.0}
    assert result.judge_requests == 3 == len(chat_server.chat_requests) and result.unrated == 0
    first = chat_server.chat_requests[0].body
    assert first["temperature"] == 0 and "valley facts" in first["messages"][-1]["content"]
    assert "judging" in reporter.phases and reporter.progress_values[-1] == 1.0
    # Structured output asked for, each batch's schema naming its own number of pairs (the last batch has one).
    schemas = sorted(r.body["response_format"]["json_schema"]["schema"]["properties"]["ratings"]["maxItems"]
                     for r in chat_server.chat_requests)
    assert schemas == [1, 3, 3]


def test_it_rates_by_the_users_rubric_and_falls_back_where_structured_output_is_refused(chat_server):
    chat_server.responder = judge_responder
    chat_server.refuse_response_format = 400
    examples = [ex(f"Question {i} about the valley?", "This is wrong." if i % 2 else f"Answer {i}.") for i in range(4)]
    result = curate(examples, CurateConfig(judge=True, judge_threshold=5, judge_batch_size=2,
                                           judge_rubric="Answers must name a source."),
                    complete_many=complete_many_for(chat_server))
    assert result.ratings == {0: 9.0, 1: 2.0, 2: 9.0, 3: 2.0} and result.judge_requests == 2 and result.judge_failures == 0
    requests = chat_server.chat_requests
    assert chat_server.refused == 1 and len(requests) == 3 and "response_format" not in requests[2].body
    assert all("Answers must name a source." in r.messages[-1]["content"] for r in requests)
    # Without a rubric the prompt is the one it always was.
    batch = [(0, examples[0])]
    assert judge_messages(batch, "valley facts") == judge_messages(batch, "valley facts", rubric="")
    assert "rubric" not in judge_messages(batch, "valley facts")[-1]["content"].lower()
    with pytest.raises(ReadableError, match="too long"):
        curate(examples, CurateConfig(judge_rubric="x" * 4001))


def test_it_counts_malformed_judge_answers_and_keeps_those_pairs(chat_server):
    chat_server.script(Reply.text("I think these are all great pairs!"),
                       Reply.text('[{"id": 1, "rating": 3}, {"id": 2, "rating": "lots"}]'),
                       Reply.status(500, "overloaded"))
    examples = [ex(f"Question {i} about rivers?") for i in range(6)]
    reporter = RecordingReporter()
    result = curate(examples, CurateConfig(judge=True, judge_batch_size=2), reporter,
                    complete_many=complete_many_for(chat_server, concurrency=1))
    assert result.ratings == {2: 3.0}
    assert [r.index for r in result.removed] == [2]
    assert result.kept == [0, 1, 3, 4, 5] and result.unrated == 5
    assert result.judge_requests == 3 and result.judge_failures == 3
    assert any("no readable rating for 5 pairs" in line for line in reporter.lines)


def test_it_fails_readably_when_the_judge_cannot_be_reached(chat_server):
    chat_server.api_key = "sk-right-key-123456"
    client = ChatClient(chat_server.url, api_key="sk-wrong-key-654321", model=chat_server.model, max_retries=0)
    with pytest.raises(ReadableError, match="could not be reached.*refused the API key") as raised:
        curate([ex("Is the sky green?"), ex("Is the river cold?")], CurateConfig(judge=True, judge_batch_size=1),
               complete_many=lambda conversations, **params: client.complete_many(conversations, **params))
    assert "sk-wrong-key" not in str(raised.value)
