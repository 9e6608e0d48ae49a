"""The held-out evaluation engine alone: answer functions in, report out; the real tiny model, the real judge
client against the local chat server. No Django."""
import pytest

from tests.fakes.chat_server import Reply
from workers.engine import inference
from workers.common.errors import Cancelled, ReadableError
from workers.common.evaluation import HeldoutSettings
from workers.engine.evaluate.heldout import answer_budget, evaluate_heldout, judge_conversation
from workers.engine.inference import ModelRef, generate
from workers.common.llm import ChatClient
from workers.engine.reporting import RecordingReporter
from workers.engine.train.train import TrainConfig, train

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gray", "brown"]
# Templated facts: the held-out answers follow the pattern the training answers teach ("Box N is <colour>.").
FACTS = [{"question": f"What colour is box {i}?", "answer": f"Box {i} is {COLOURS[i % 8]}."} for i in range(30)]
TRAIN, HELDOUT = FACTS[:25], FACTS[25:]


class Recorder:
    """An answer function that records what it was asked and answers from a table."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.calls = []

    def __call__(self, conversations, **kwargs):
        self.calls.append({"conversations": conversations, **kwargs})
        return [self.answers.get(c[-1]["content"], "") for c in conversations]


EXAMPLES = [
    {"question": "Q0", "answer": "Paris is the capital of France.", "system": "Answer in one sentence."},
    {"question": "Q1", "answer": "Seven."},
    {"question": "Q2", "answer": "The river Seine flows through Paris and then into the English Channel at Le Havre."},
    {"question": "Q3", "answer": "Blue."},
]


def test_it_scores_both_models_and_orders_the_changes():
    base = Recorder({"Q0": "Berlin.", "Q1": "Seven.", "Q2": "The Seine flows through Paris.", "Q3": "Blue."})
    tuned = Recorder({"Q0": "Paris is the capital of France.", "Q1": "Eight.", "Q2": "The river Seine flows through Paris.",
                      "Q3": "blue."})
    reporter = RecordingReporter()
    result = evaluate_heldout(EXAMPLES, base, tuned, reporter)
    assert result["examples"] == 4 and result["metric"] == "token_f1"
    items = result["items"]
    assert [item["change"] for item in items] == ["improved", "worse", "improved", "same"]
    assert items[0]["base"]["token_f1"] == 0.0 and items[0]["tuned"]["exact_match"] == 1.0
    assert items[3]["tuned"]["exact_match"] == 1.0  # case does not count: the same as "Blue."
    assert result["counts"] == {"improved": 2, "worse": 1, "same": 1}
    assert result["most_improved"] == [0, 2] and result["most_worse"] == [1]  # largest F1 gain first
    assert result["base"]["exact_match"] == 0.5 and result["tuned"]["exact_match"] == 0.5
    assert result["tuned"]["token_f1"] > result["base"]["token_f1"] and result["judge"] is None
    assert reporter.phases[:2] == ["answering with the base model", "answering with the tuned model"]
    assert reporter.progress_values[-1] == 1.0 and reporter.metrics[-1]["tuned_token_f1"] == result["tuned"]["token_f1"]


def test_it_asks_greedily_in_the_training_chat_format_with_budgets_from_the_references():
    base, tuned = Recorder({}), Recorder({})
    evaluate_heldout(EXAMPLES, base, tuned, RecordingReporter(), settings=HeldoutSettings(batch_size=2),
                     count_tokens=lambda text: len(text.split()))
    assert base.calls == tuned.calls  # both models get the same questions the same way
    # Batches grouped by reference length: the two one-word answers together, decoding only what they need.
    assert [[c[-1]["content"] for c in call["conversations"]] for call in base.calls] == [["Q1", "Q3"], ["Q0", "Q2"]]
    assert [call["max_new_tokens"] for call in base.calls] == [answer_budget(1), answer_budget(15)] == [16, 27]
    assert all(call["temperature"] == 0.0 for call in base.calls)
    # The conversation training builds: the example's system prompt, then the question.
    assert base.calls[1]["conversations"][0] == [{"role": "system", "content": "Answer in one sentence."},
                                                 {"role": "user", "content": "Q0"}]
    fixed = Recorder({})
    evaluate_heldout(EXAMPLES, fixed, Recorder({}), RecordingReporter(), settings=HeldoutSettings(max_new_tokens=5))
    assert [call["max_new_tokens"] for call in fixed.calls] == [5]


def test_it_refuses_nothing_to_evaluate_and_bad_settings():
    with pytest.raises(ReadableError, match="no held-out examples"):
        evaluate_heldout([], Recorder({}), Recorder({}), RecordingReporter())
    with pytest.raises(ReadableError, match="batch size"):
        evaluate_heldout(EXAMPLES, Recorder({}), Recorder({}), RecordingReporter(), settings=HeldoutSettings(batch_size=0))


def test_it_stops_when_asked():
    reporter = RecordingReporter(stop_after_metrics=0)
    with pytest.raises(Cancelled):
        evaluate_heldout(EXAMPLES, Recorder({}), Recorder({}), reporter)


# The rating's forms the judge reads are tested with the one parser, in tests/workers/test_judge.py.


def test_it_has_answers_judged_and_counts_failed_and_unreadable_ratings(chat_server):
    # Replies in order of the requests (one at a time): base then tuned answer of each question.
    chat_server.script(Reply.text('{"score": 2}'), Reply.text('{"score": 9}'),
                       Reply.text("The candidate is mostly right."),  # malformed: no rating
                       Reply.text('{"score": 4}'), Reply.status(400, "context too long"), Reply.text("10"),
                       Reply.text('{"score": 0}'), Reply.text('{"score": 5}'))
    base = Recorder({"Q0": "Berlin.", "Q1": "Six.", "Q2": "It flows.", "Q3": "Red."})
    tuned = Recorder({"Q0": "Paris.", "Q1": "Seven.", "Q2": "The Seine flows to Le Havre.", "Q3": "Blue."})
    with ChatClient(chat_server.url, model=chat_server.model, concurrency=1, max_retries=0) as client:
        result = evaluate_heldout(EXAMPLES, base, tuned, reporter := RecordingReporter(),
                                  judge=lambda conversations, **params: client.complete_many(conversations, temperature=0,
                                                                                             **params))
    judge = result["judge"]
    assert judge["judged"] == 6 and judge["failed"] == 2 and judge["unreadable"] == 1
    assert judge["base"] == pytest.approx((0.2 + 0.0) / 2) and judge["tuned"] == pytest.approx((0.9 + 0.4 + 1.0 + 0.5) / 4)
    assert [item["base"]["judge"] for item in result["items"]] == [0.2, None, None, 0.0]
    assert "400 Bad Request" in judge["error"] and any("2 failed" in line for line in reporter.lines)
    first = chat_server.chat_requests[0].body
    assert first["temperature"] == 0 and "Paris is the capital of France." in first["messages"][1]["content"]
    assert "Berlin." in first["messages"][1]["content"] and '"score"' in first["messages"][1]["content"]
    assert result["tuned"]["token_f1"] > result["base"]["token_f1"]  # the text metrics do not depend on the judge


def test_it_counts_a_judge_that_cannot_be_reached_without_failing():
    def unreachable(conversations, **params):
        raise ReadableError("The chosen provider was deleted; choose another one and start again.")

    result = evaluate_heldout(EXAMPLES, Recorder({}), Recorder({}), RecordingReporter(), judge=unreachable)
    assert result["judge"] == {"base": None, "tuned": None, "judged": 0, "failed": 8, "unreadable": 0,
                               "error": "The chosen provider was deleted; choose another one and start again."}


def test_the_judge_prompt_names_the_reference_and_the_answer():
    text = judge_conversation(question="Why?", reference="Because.", answer="")[1]["content"]
    assert "Why?" in text and "Because." in text and "(no answer)" in text
    assert text == judge_conversation(question="Why?", reference="Because.", answer="", rubric="  ")[1]["content"]
    assert "rubric" not in text.lower()


def test_it_judges_by_the_users_rubric_and_falls_back_where_structured_output_is_refused(chat_server):
    chat_server.refuse_response_format = 422
    chat_server.responder = lambda request: Reply.text('{"score": 6}')
    with ChatClient(chat_server.url, model=chat_server.model, max_retries=0) as client:
        result = evaluate_heldout(EXAMPLES, Recorder({}), Recorder({}), RecordingReporter(),
                                  settings=HeldoutSettings(judge_rubric="Units must be given."),
                                  judge=lambda conversations, **params: client.complete_many(conversations, **params))
    assert result["judge"]["judged"] == 8 and result["judge"]["failed"] == 0 and result["judge"]["tuned"] == 0.6
    requests = chat_server.chat_requests
    assert chat_server.refused == 1 and len(requests) == 9
    assert requests[0].body["response_format"]["json_schema"]["schema"]["properties"]["score"]["type"] == "integer"
    assert all("Units must be given." in r.messages[1]["content"] for r in requests)
    with pytest.raises(ReadableError, match="too long"):
        evaluate_heldout(EXAMPLES, Recorder({}), Recorder({}), RecordingReporter(),
                         settings=HeldoutSettings(judge_rubric="x" * 4001))


@pytest.fixture
def fresh_cache():
    inference.CACHE.clear()
    yield
    inference.CACHE.clear()


def test_it_shows_the_tiny_models_improvement_on_held_out_questions_of_the_same_kind(tmp_path, fresh_cache):
    train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=TRAIN, eval_pairs=HELDOUT, max_steps=30,
                      evaluate=False), RecordingReporter())
    base = ModelRef(path=str(tmp_path / "base"))
    tuned = ModelRef(path=str(tmp_path / "base"), adapter=str(tmp_path / "model"))
    result = evaluate_heldout(HELDOUT, lambda c, **k: generate(base, c, **k), lambda c, **k: generate(tuned, c, **k),
                              RecordingReporter())
    # The untrained base writes noise; the tuned model answers in the learnt pattern ("Box N is <colour>."), but the
    # words it repeats from the question earn nothing: an answer scores only where its colour is the reference's.
    assert all(item["tuned_answer"].startswith("Box ") for item in result["items"])
    for item, example in zip(result["items"], HELDOUT):
        colour = example["answer"].split()[-1].rstrip(".")
        assert (item["tuned"]["token_f1"] > 0) == (colour in item["tuned_answer"].lower().rstrip(".").split()[2:])
