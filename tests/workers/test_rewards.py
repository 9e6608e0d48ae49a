"""The reward library: specs, every rule-based function on crafted completions, the TRL adapter, and the LLM judge
against the local chat-completions server (malformed answers, 429s, caching, failures)."""
import json

import pytest

from tests.fakes.chat_server import Reply
from workers.common.errors import ReadableError
from workers.common.llm import ChatClient
from workers.common.rewards import LIBRARY, describe, validate_specs
from workers.common.rewards import (
    JudgeStats,
    SampleRecorder,
    build_scorers,
    score_samples,
    trl_reward_functions,
)

GOOD = "<reasoning>\n3 apples plus 4 apples make 7.\n</reasoning>\n<answer>\n7\n</answer>"


def scores(spec, completions, **columns):
    (scorer,) = build_scorers([spec])
    columns = {k: v if isinstance(v, list) else [v] * len(completions) for k, v in columns.items()}
    return scorer.score(["How many apples?"] * len(completions), completions, columns)


# --- specs ---------------------------------------------------------------------------------------------------------

def test_it_fills_defaults_and_makes_names_unique():
    specs = validate_specs([{"type": "format"}, {"type": "format", "mode": "regex", "pattern": r"\d+"},
                            {"type": "answer_match", "weight": "2", "name": "Correct"}])
    assert [s["name"] for s in specs] == ["format", "format_2", "correct"]
    assert specs[0]["tags"] == ["reasoning", "answer"] and specs[0]["weight"] == 1.0 and specs[2]["weight"] == 2.0
    assert all(set(LIBRARY[s["type"]]["params"]) <= set(s) for s in specs)


@pytest.mark.parametrize("specs, message", [
    ([], "at least one"),
    ([{"type": "magic"}], "unknown type 'magic'"),
    ([{"type": "format", "weight": "heavy"}], "weight must be a number"),
    ([{"type": "format", "weight": 11}], "between -10.0 and 10.0"),
    ([{"type": "format", "mode": "regex", "pattern": "(unclosed"}], "not valid"),
    ([{"type": "format", "tags": ["ok", "<bad>"]}], "tag names"),
    ([{"type": "length", "min": 50, "max": 10}], "not be below the minimum"),
    ([{"type": "judge", "rubric": "  "}], "write the rubric"),
    ([{"type": "judge", "rubric": "x", "on_failure": "explode"}], "one of: skip, zero"),
    ([{"type": "exact", "target": "", "column": ""}], "target text or a reference column"),
    ([{"type": "format", "name": "Bad Name!"}], "lower-case letters"),
    ([{"type": "format"}] * 9, "at most 8"),
])
def test_it_refuses_specs_that_cannot_work_with_readable_errors(specs, message):
    with pytest.raises(ReadableError) as error:
        validate_specs(specs)
    assert message.lower() in str(error.value).lower()


def test_it_describes_each_function_in_one_line():
    lines = [describe(s) for s in validate_specs([{"type": t, "rubric": "clear?", "target": "x"} for t in LIBRARY])]
    assert lines[0] == "sections <reasoning> <answer>" and all(lines)


# --- rule-based functions --------------------------------------------------------------------------------------------

def test_it_scores_required_sections_in_order_with_partial_credit():
    spec = {"type": "format"}
    assert scores(spec, [GOOD, "<answer>7</answer>", "7", "<answer>7</answer><reasoning>late</reasoning>",
                         "<reasoning> </reasoning><answer>7</answer>"]) == [1.0, 0.5, 0.0, 0.5, 0.5]
    assert scores({**spec, "partial": False}, [GOOD, "<answer>7</answer>"]) == [1.0, 0.0]
    # Strict: text outside the sections halves the score.
    assert scores({**spec, "strict": True}, [GOOD, "Sure! " + GOOD]) == [1.0, 0.5]


def test_it_scores_a_regular_expression():
    assert scores({"type": "format", "mode": "regex", "pattern": r"####\s*\d+\s*$"},
                  ["so 7\n#### 7", "#### seven", "7"]) == [1.0, 0.0, 0.0]


def test_it_matches_numeric_answers_like_the_gsm8k_evaluation():
    completions = [GOOD, "<answer>$7.00</answer>", "I think 8.\n#### 8", "It is 7 apples", "no idea"]
    assert scores({"type": "answer_match"}, completions, answer="7") == [1.0, 1.0, 0.0, 1.0, 0.0]
    # The reference may be a whole GSM8K solution: its #### line counts. A bare last number is not a marked answer.
    assert scores({"type": "answer_match", "require_marker": True}, completions,
                  answer="3 + 4 = 7\n#### 7") == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert scores({"type": "answer_match"}, ["1,234 apples"], answer="1234") == [1.0]
    # No reference: skipped (None), not punished.
    assert scores({"type": "answer_match"}, [GOOD, GOOD], answer=["", None]) == [None, None]


def test_it_scores_exact_and_contains_matches():
    assert scores({"type": "exact", "target": "The Blue fox"}, ["the  blue fox ", "the blue fox!"]) == [1.0, 0.0]
    assert scores({"type": "exact", "target": "The Blue fox", "case_sensitive": True}, ["the blue fox"]) == [0.0]
    assert scores({"type": "exact", "section": "answer"}, [GOOD, "<answer>8</answer>", "7"], answer="7") == [1.0, 0.0, 0.0]
    assert scores({"type": "contains", "target": "blue"}, ["A BLUE fox", "a red fox"]) == [1.0, 0.0]
    assert scores({"type": "contains", "column": "answer"}, ["It is Paris.", "Rome"], answer=["paris", "Oslo"]) == [1.0, 0.0]


def test_it_scores_a_length_band():
    spec = {"type": "length", "min": 4, "max": 8}
    assert scores(spec, ["one two", "one two three four five", " ".join(["w"] * 12), " ".join(["w"] * 20)]) == \
        [0.5, 1.0, 0.5, 0.0]
    assert scores({"type": "length", "unit": "characters", "min": 0, "max": 10}, ["x" * 10, "x" * 15]) == [1.0, 0.5]


def test_it_penalises_repetition():
    fresh, loop = "the cat sat on the mat today", "the cat sat " * 8
    got = scores({"type": "repetition", "n": 3}, [fresh, loop, "short"])
    assert got[0] == 1.0 and got[1] < 0.2 and got[2] == 1.0


# --- TRL -----------------------------------------------------------------------------------------------------------

def test_it_makes_trl_reward_functions_that_read_dataset_columns():
    scorers = build_scorers([{"type": "format", "weight": 0.5}, {"type": "answer_match", "name": "correct", "weight": 2}])
    recorder = SampleRecorder()
    functions, weights = trl_reward_functions(scorers, recorder)
    assert [f.__name__ for f in functions] == ["format", "correct"] and weights == [0.5, 2.0]
    prompts = [[{"role": "system", "content": "Use tags."}, {"role": "user", "content": "3 + 4?"}]] * 2
    completions = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "<answer>8</answer>"}]]
    extra = {"trainer_state": object(), "completion_ids": [[1], [2]], "log_extra": print}
    assert functions[0](prompts=prompts, completions=completions, answer=["7", "7"], **extra) == [1.0, 0.5]
    assert functions[1](prompts=prompts, completions=completions, answer=["7", "7"], **extra) == [1.0, 0.0]
    assert functions[1](prompts=["3 + 4?"], completions=["#### 7"], answer=["7"]) == [1.0]  # plain text too
    samples = recorder.latest()
    assert samples[0]["prompt"] == "3 + 4?" and samples[0]["completion"] == "#### 7"
    assert samples[0]["scores"] == {"correct": 1.0}


def test_it_keeps_the_best_and_worst_completions_of_the_latest_batch():
    recorder = SampleRecorder()
    completions = ["a", "b", "c", "d", "e"]
    recorder.add("f", ["q"] * 5, completions, [0.2, 0.9, 0.1, 0.5, None], {"answer": ["x"] * 5})
    recorder.add("g", ["q"] * 5, completions, [0.0, 0.1, 0.0, 0.0, 0.0], {})
    picked = recorder.latest(limit=3)
    assert [s["completion"] for s in picked] == ["b", "e", "d"]  # e: total 0, its skipped score left out and picked[0]["scores"] == {"f": 0.9, "g": 0.1}
    assert picked[0]["answer"] == "x"


def test_it_scores_preview_samples_with_the_weighted_total():
    scorers = build_scorers([{"type": "format", "weight": 0.5}, {"type": "answer_match", "weight": 2}])
    rows = score_samples(scorers, [{"prompt": "3+4?", "completion": GOOD, "answer": "7"},
                                   {"prompt": "3+4?", "completion": "<answer>7</answer>", "answer": ""}])
    assert rows[0] == {"scores": {"format": 1.0, "answer_match": 1.0}, "total": 2.5}
    assert rows[1] == {"scores": {"format": 0.5, "answer_match": None}, "total": 0.25}


# --- the judge -----------------------------------------------------------------------------------------------------

# The answers' forms the judge reads are tested with the one parser, in tests/workers/test_judge.py.

def judge(chat_server, **spec):
    client = ChatClient(chat_server.url, model=chat_server.model, max_retries=3, backoff_base=0.01, backoff_max=0.05)
    calls = []
    (scorer,) = build_scorers([{"type": "judge", "rubric": "Is the answer right?", **spec}],
                              judge_client=lambda provider: client, on_call=lambda result, s: calls.append((result, s)))
    return scorer, calls


def test_it_asks_the_judge_once_per_distinct_completion_and_caches(chat_server):
    chat_server.responder = lambda request: Reply.text(json.dumps({"score": 8 if "seven" in request.text else 2}))
    scorer, calls = judge(chat_server, include_reference=True, cost_per_million_input=1000.0)
    got = scorer.score(["3+4?"] * 3, ["seven", "eight", "seven"], {"answer": ["7"] * 3})
    assert got == [0.8, 0.2, 0.8] and len(chat_server.chat_requests) == 2
    request = chat_server.chat_requests[0]
    assert "Is the answer right?" in request.text and "Reference answer:\n7" in request.text
    assert request.body["temperature"] == 0 and request.body["max_tokens"] == 256
    assert scorer.score(["3+4?"], ["eight"], {"answer": ["7"]}) == [0.2] and len(chat_server.chat_requests) == 2
    stats = scorer.stats.as_dict()
    assert stats["judge_calls"] == 2 and stats["judge_cache_hits"] == 2 and stats["judge_failures"] == 0
    assert stats["judge_prompt_tokens"] > 0 and stats["judge_cost"] > 0
    assert len(calls) == 2 and calls[0][1]["name"] == "judge"


def test_it_asks_for_structured_output_and_falls_back_once_for_every_judge_of_a_client(chat_server):
    chat_server.responder = lambda request: Reply.text(json.dumps({"score": 9, "reason": "right"}))
    scorer, _calls = judge(chat_server)
    assert scorer.score(["q", "q"], ["a", "b"], {}) == [0.9, 0.9]
    schema = chat_server.chat_requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["score", "reason"] and schema["properties"]["score"]["maximum"] == 10

    chat_server.refuse_response_format = 400
    chat_server.requests.clear()
    client = ChatClient(chat_server.url, model=chat_server.model, max_retries=0)
    first, second = build_scorers([{"type": "judge", "rubric": "Right?"}, {"type": "judge", "rubric": "Kind?"}],
                                  judge_client=lambda provider: client)
    assert first.score(["q"] * 3, ["a", "b", "c"], {}) == [0.9] * 3 and second.score(["q"], ["a"], {}) == [0.9]
    assert chat_server.refused == 1 and len(chat_server.chat_requests) == 5  # one refused, resent, and 3 without
    assert first.stats.calls == 5 and first.stats.failures == 0  # every request that left is counted


def test_it_retries_rate_limits_and_server_errors(chat_server):
    chat_server.script(Reply.status(429, headers={"Retry-After": "0"}), Reply.status(503), Reply.text('{"score": 6}'))
    scorer, _calls = judge(chat_server)
    assert scorer.score(["q"], ["a"], {}) == [0.6]
    assert len(chat_server.chat_requests) == 3
    assert scorer.stats.calls == 1 and scorer.stats.attempts == 3 and scorer.stats.failures == 0


def test_it_counts_failures_and_skips_or_zeroes_them_as_told(chat_server):
    chat_server.script(Reply.text("What a lovely answer!"), *[Reply.status(500)] * 4)
    scorer, _calls = judge(chat_server)  # on_failure "skip" by default
    assert scorer.score(["q", "q"], ["malformed", "broken"], {}) == [None, None]
    stats = scorer.stats
    assert stats.failures == 2 and stats.malformed == 1 and stats.calls == 2 and stats.attempts == 5
    assert any("server error" in e for e in scorer.last_errors) and any("unreadable" in e for e in scorer.last_errors)
    # Failures are not cached: asked again, they may succeed.
    chat_server.script(Reply.text('{"score": 5}'), Reply.text('{"score": 5}'))
    assert scorer.score(["q", "q"], ["malformed", "broken"], {}) == [0.5, 0.5]

    chat_server.script(Reply.text("no score here"))
    zero, _ = judge(chat_server, on_failure="zero")
    assert zero.score(["q"], ["x"], {}) == [0.0] and zero.stats.failures == 1


def test_it_needs_an_endpoint_for_a_judge():
    with pytest.raises(ReadableError, match="no chat endpoint"):
        build_scorers([{"type": "judge", "rubric": "Good?"}])


def test_it_shares_one_stats_object_across_judges(chat_server):
    client = ChatClient(chat_server.url, model=chat_server.model)
    chat_server.responder = lambda request: Reply.text('{"score": 10}')
    stats = JudgeStats()
    scorers = build_scorers([{"type": "judge", "rubric": "A"}, {"type": "judge", "rubric": "B"}],
                            judge_client=lambda provider: client, stats=stats)
    rows = score_samples(scorers, [{"prompt": "q", "completion": "c"}])
    assert rows == [{"scores": {"judge": 1.0, "judge_2": 1.0}, "total": 2.0}] and stats.calls == 2
