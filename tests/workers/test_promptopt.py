"""The prompt optimizer (workers.engine.promptopt) against the fake OpenAI-compatible server: the task model answers bare
(and so correctly under exact match) only when its system prompt says "Answer in one word.", which the fake
reflection model proposes. Every request the optimizer sends is counted on the server."""
import pytest

from tests.fakes.chat_server import PromptTaskResponder, Reply
from workers.common.errors import Cancelled, ReadableError
from workers.common.llm import ChatClient
from workers.common.promptopt import PromptOptConfig
from workers.engine.promptopt import (
    ChatBackend,
    LocalBackend,
    optimize_prompt,
    pareto_front,
    parse_proposal,
)
from workers.engine.reporting import RecordingReporter

CAPITALS = {f"What is the capital of country {i}?": f"City{i}" for i in range(10)}
EXAMPLES = [{"question": q, "answer": a} for q, a in CAPITALS.items()]
SEED = "You are a helpful assistant."


def config(**overrides):
    values = {"train": EXAMPLES[:6], "val": EXAMPLES[6:], "seed_prompt": SEED, "metric": "exact_match", "budget": 30,
              "minibatch_size": 2, "retry_wait": 0.0}
    return PromptOptConfig(**{**values, **overrides})


def backends(server):
    client = ChatClient(server.url, model=server.model, max_retries=3, concurrency=2)
    return ChatBackend(client), ChatBackend(ChatClient(server.url, model=server.model, concurrency=1))


def run(server, reporter=None, **overrides):
    task, reflection = backends(server)
    seen = []
    result = optimize_prompt(config(**overrides), task, reflection, reporter or RecordingReporter(),
                             on_candidate=seen.append)
    return result, seen


def test_it_finds_the_instruction_the_reflection_model_proposes(chat_server):
    chat_server.responder = PromptTaskResponder(CAPITALS)
    reporter = RecordingReporter()
    result, seen = run(chat_server, reporter)
    assert result["seed_val_score"] == 0.0 and result["best_val_score"] == 1.0 and result["improved"]
    assert "Answer in one word." in result["best_prompt"]
    best = result["candidates"][result["best_index"]]
    assert best["status"] == "accepted" and best["parent"] == 0 and best["val_scores"] == [1.0] * 4
    # Every candidate reached the caller and the reporter as it was scored, with its parent and the calls used.
    assert [c["index"] for c in seen] == [c["index"] for c in result["candidates"]]
    assert seen[0]["status"] == "seed" and seen[0]["calls_used"] == 4
    assert {"candidate", "parent", "calls_used", "val_score"} <= set(reporter.metrics[1])
    assert any("Candidate #1 (from #0): accepted" in line for line in reporter.lines)


@pytest.mark.parametrize("budget", [11, 12, 17, 30])
def test_it_never_sends_more_requests_than_the_budget(chat_server, budget):
    chat_server.responder = PromptTaskResponder(CAPITALS, proposals=["```\nBe brief.\n```", "```\nBe precise.\n```"])
    result, _ = run(chat_server, budget=budget)
    sent = len(chat_server.chat_requests)
    assert sent == result["calls_used"] <= budget
    assert result["task_calls"] + result["reflection_calls"] == sent
    assert result["reflection_calls"] == chat_server.responder.reflections
    # It stops only when another round cannot fit: a round costs at most 2 * minibatch + 1 + validation calls.
    assert budget - sent < 2 * 2 + 1 + 4


def test_it_counts_resent_requests_against_the_budget(chat_server):
    chat_server.responder = PromptTaskResponder(CAPITALS)
    chat_server.script(Reply.status(503), Reply.status(429), Reply.status(500))
    result, _ = run(chat_server, budget=14)
    assert len(chat_server.chat_requests) == result["calls_used"] <= 14
    assert result["failed_calls"] == 3


def test_it_returns_the_seed_when_no_proposal_helps(chat_server):
    # The proposals help on the minibatch (they win there) but never carry the instruction, or carry it wrongly.
    chat_server.responder = PromptTaskResponder(CAPITALS, proposals=["```\nThink step by step.\n```",
                                                                     "```\nBe concise and polite.\n```"])
    result, _ = run(chat_server, metric="token_f1")
    assert result["best_index"] == 0 and result["best_prompt"] == SEED and not result["improved"]
    assert result["best_val_score"] == result["seed_val_score"]


def test_it_keeps_the_seed_when_a_candidate_wins_the_minibatch_but_loses_validation(chat_server):
    # The task model answers bare for training questions under the proposal, but worse than the seed on validation.
    responder = PromptTaskResponder(CAPITALS, instruction="Answer in one word.")
    val_questions = {e["question"] for e in EXAMPLES[6:]}

    def tricky(request):
        system = " ".join(str(m.get("content", "")) for m in request.messages if m.get("role") == "system")
        question = next((str(m.get("content", "")) for m in request.messages if m.get("role") == "user"), "")
        if question in val_questions:
            return Reply(content="Nothing." if "one word" in system else CAPITALS[question])
        return responder(request)

    chat_server.responder = tricky
    result, _ = run(chat_server, seed_prompt="")
    assert result["seed_val_score"] == 1.0 and result["best_index"] == 0 and result["best_prompt"] == ""
    accepted = [c for c in result["candidates"] if c["status"] == "accepted"]
    assert accepted and all(c["val_score"] < 1.0 for c in accepted)


def test_it_survives_malformed_reflection_replies(chat_server):
    chat_server.responder = PromptTaskResponder(CAPITALS, proposals=[
        "", "```\n```", Reply(body="not a chat completion"), Reply.status(400, "bad request"),
        "x" * 9000, "Answer in one word."])
    result, seen = run(chat_server, budget=40)
    statuses = [c["status"] for c in result["candidates"]]
    assert statuses[:6] == ["seed", "unusable", "unusable", "unusable", "unusable", "unusable"]
    assert result["best_prompt"] == "Answer in one word." and result["best_val_score"] == 1.0
    assert all(c["note"] for c in seen[1:6]) and len(chat_server.chat_requests) <= 40


def test_it_stops_between_calls_when_cancelled(chat_server):
    chat_server.responder = PromptTaskResponder(CAPITALS, proposals=["```\nBe brief.\n```"])
    reporter = RecordingReporter(stop_after_metrics=2)  # stop once the seed and one candidate are recorded
    with pytest.raises(Cancelled):
        run(chat_server, reporter, budget=200)
    assert len(chat_server.chat_requests) < 20


def test_it_explains_a_budget_too_small_for_one_round(chat_server):
    with pytest.raises(ReadableError, match="at least 11"):
        run(chat_server, budget=10)
    assert chat_server.chat_requests == []


def test_it_explains_a_refused_key(chat_server):
    chat_server.api_key = "sk-right-key-0123456789"
    with pytest.raises(ReadableError, match="refused the API key") as caught:
        run(chat_server)
    assert len(chat_server.chat_requests) <= 4 and "sk-" not in str(caught.value)


def test_it_optimizes_a_local_model_with_numeric_match():
    """The local backend with a stand-in generate function (the tiny model's answers carry no signal to learn)."""
    calls = []

    def generate(conversations, **params):
        calls.append(len(conversations))
        return ["The answer is 42." if "number" in c[0]["content"] else "I am not sure." for c in conversations]

    def reflect(conversations, **params):
        return ["```\nEnd with the final number.\n```" for _ in conversations]

    rows = [{"question": f"What is 40 + {2 + i - i}?", "answer": "42"} for i in range(6)]
    result = optimize_prompt(PromptOptConfig(train=rows[:4], val=rows[4:], seed_prompt="Be nice.", metric="numeric",
                                             budget=12, minibatch_size=2),
                             LocalBackend(generate, batch_size=2), LocalBackend(reflect), RecordingReporter())
    assert result["best_val_score"] == 1.0 and result["seed_val_score"] == 0.0
    assert sum(calls) == result["task_calls"] and result["calls_used"] <= 12


def test_it_reads_proposals_in_their_usual_shapes():
    assert parse_proposal("Here:\n```text\nBe brief.\n```\nDone") == "Be brief."
    assert parse_proposal("```Be brief.```") == "Be brief."
    assert parse_proposal("<think>hmm</think>Be brief.") == "Be brief."
    assert parse_proposal("```\nBe brief and") == "Be brief and"
    assert parse_proposal("```\n\n```") is None and parse_proposal("") is None


def test_it_keeps_only_undominated_winners_on_the_front():
    assert pareto_front([[0, 1, 0], [1, 0, 0], [1, 1, 0]]) == {2: 3}
    assert pareto_front([[1, 0], [0, 1]]) == {0: 1, 1: 1}


def test_it_reports_each_candidate_whole_with_the_front_it_leaves(chat_server):
    # Pages draw the candidates and the Pareto front live from these events alone.
    chat_server.responder = PromptTaskResponder(CAPITALS, proposals=["```\nBe brief.\n```",
                                                                      "```\nYou answer questions. Answer in one word.\n```"])
    reporter = RecordingReporter()
    result, seen = run(chat_server, reporter)
    events = [m for m in reporter.metrics if "candidate" in m]
    assert [(e["candidate"], e["status"], e["front"]) for e in events] == [
        (0, "seed", [0]), (1, "rejected", [0]), (2, "accepted", [2])]
    assert [e["prompt"] for e in events] == [c["prompt"] for c in seen]
    assert events[1]["note"] == "It did not beat its parent on the minibatch."
    assert events[-1]["front"] == result["front"]
