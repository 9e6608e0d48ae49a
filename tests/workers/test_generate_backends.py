"""The generators behind one interface: reading malformed model output, spreading pairs over chunks, the
endpoint generator against a real local chat server, and the local model generator with the tiny model."""
import json

import pytest

from tests.fakes.chat_server import Reply, default_responder
from workers.common.errors import Cancelled, ReadableError
from workers.engine.data.generate import (
    EndpointGenerator,
    ExtractiveGenerator,
    LocalModelGenerator,
    build_messages,
    fact_plan,
    generate_pairs,
    parse_facts,
    parse_pairs,
    plan,
    spread,
)
from workers.common.llm import ChatClient
from workers.common.pii import PiiScrubber
from workers.engine.reporting import RecordingReporter
from workers.common.catalogue import TINY_MODEL_ID

GOOD = [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]


@pytest.mark.parametrize("raw,pairs,malformed", [
    (json.dumps(GOOD), [("Q1?", "A1."), ("Q2?", "A2.")], 0),
    ("Sure! Here they are:\n```json\n" + json.dumps(GOOD) + "\n```\nAnything else?", [("Q1?", "A1."), ("Q2?", "A2.")], 0),
    ('[{"question": "Q1?", "answer": "A1.",}, {"question": "Q2?", "answer": "A2."},]', [("Q1?", "A1."), ("Q2?", "A2.")], 0),
    ('[{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "ans', [("Q1?", "A1.")], 1),
    ('{"pairs": [{"Question": "Q1?", "Answer": "A1."}, {"question": "", "answer": "x"}, {"question": "Q3?"}]}', [("Q1?", "A1.")], 2),
    ('[{"question": "Q1?", "answer": "A1."}, "just text", 7]', [("Q1?", "A1.")], 2),
    ('<think>They want {json}.</think>{"question": "Q1?", "answer": "A1."}', [("Q1?", "A1.")], 0),
    ("1. Q: What is X?\nA: X is Y.\n2. Q: Where is Z?\nA: In the north.", [("What is X?", "X is Y."), ("Where is Z?", "In the north.")], 0),
    ("**Question 1:** Why?\n**Answer 1:** Because.", [("Why?", "Because.")], 0),
    ("I cannot help with that.", [], 1),
    ("", [], 1),
])
def test_it_salvages_valid_pairs_from_malformed_output_and_counts_the_rest(raw, pairs, malformed):
    assert parse_pairs(raw) == (pairs, malformed)


def test_it_drops_pairs_beyond_the_number_asked_without_calling_them_malformed():
    assert parse_pairs(json.dumps(GOOD), limit=1) == ([("Q1?", "A1.")], 0)


FACTS = [{"fact": "The lake is 40 metres deep.", "answer": "40 metres",
          "questions": ["How deep is the lake?", "The lake is how deep?", "What is the depth of the lake?"]},
         {"fact": "The Sorrel floods in spring.", "answer": "in spring", "questions": ["When does the Sorrel flood?"]}]


@pytest.mark.parametrize("raw,triples,malformed", [
    (json.dumps(FACTS), [("How deep is the lake?", "40 metres", "The lake is 40 metres deep."),
                         ("The lake is how deep?", "40 metres", "The lake is 40 metres deep."),
                         ("What is the depth of the lake?", "40 metres", "The lake is 40 metres deep."),
                         ("When does the Sorrel flood?", "in spring", "The Sorrel floods in spring.")], 0),
    # One fact alone, no fact text (its first question stands for it), phrasings with blanks and repeats.
    (json.dumps({"answer": "Eldhavn", "questions": ["What is the capital?", "", "What is the capital?", "Which town is the capital?"]}),
     [("What is the capital?", "Eldhavn", "What is the capital?"), ("Which town is the capital?", "Eldhavn", "What is the capital?")], 0),
    # Facts and plain pairs mixed, in a fence, the last fact cut off.
    ("```json\n" + json.dumps([FACTS[1], GOOD[0]])[:-1] + ', {"fact": "x", "answer": "y", "questions": ["Q', 
     [("When does the Sorrel flood?", "in spring", "The Sorrel floods in spring."), ("Q1?", "A1.", "")], 1),
    ('{"items": [{"fact": "f", "answer": "a", "questions": []}, {"fact": "g", "questions": ["Q?"]}]}', [], 2),
])
def test_it_reads_facts_asked_several_ways_and_still_plain_pairs(raw, triples, malformed):
    assert parse_facts(raw) == (triples, malformed)
    assert parse_pairs(raw) == ([(q, a) for q, a, _ in triples], malformed)


def test_it_plans_few_facts_asked_three_ways():
    assert [fact_plan(n) for n in (1, 2, 3, 4, 6, 7, 20)] == [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3), (7, 3)]


def test_it_spreads_the_pairs_wanted_over_the_chunks():
    assert spread(10, 3) == [3, 3, 4] and sum(spread(7, 7)) == 7
    assert spread(2, 4) == [0, 1, 0, 1]  # fewer pairs than chunks: spread along the document
    assert plan(None, 2) == [3, 3] and plan(None, 2, per_chunk_default=None) == [None, None]


def test_it_puts_the_task_summary_and_passage_in_the_prompt_with_the_instruction_last():
    messages = build_messages("The lake is deep.", 4, task_description="Answer park visitors", summary="A guide to the park")
    prompt = messages[-1]["content"]
    assert prompt.index("Answer park visitors") < prompt.index("A guide to the park") < prompt.index("The lake is deep.")
    assert "Write 4 question-answer pairs" in prompt and "2 facts, each asked 2 different ways" in prompt
    assert "short" in prompt and prompt.rstrip().endswith('[{"fact": "...", "answer": "...", "questions": ["...", "..."]}].')
    assert build_messages("The lake is deep.", 3)[-1]["content"].rstrip().endswith('"questions": ["...", "...", "..."]}].')


def test_it_takes_the_requested_number_of_extractive_pairs_filling_short_chunks_from_others():
    chunks = ["The lake is 40 metres deep. The longest river is the Sorrel.", "The moon was reached in 1969."]
    reporter = RecordingReporter()
    everything = generate_pairs(chunks, ExtractiveGenerator(), reporter=reporter)
    assert len(everything.pairs) == 9 and reporter.progress_values == [0.5, 1.0]
    assert len({qa.fact for qa in everything.pairs}) == 3
    some = generate_pairs(chunks, ExtractiveGenerator(), num_pairs=8, reporter=RecordingReporter())
    # Four pairs from each chunk were planned; the second has three, so the first chunk's spare pair fills
    # the gap. Pairs stay in document order.
    assert [(qa.answer, qa.chunk_index) for qa in some.pairs] == [("40 metres", 0)] * 3 + [("the Sorrel", 0)] * 2 + [
        ("1969", 1)] * 3


def endpoint_client(server, **kwargs):
    return ChatClient(server.url, api_key="sk-test-key-000000000", model=server.model, timeout=5,
                      max_retries=kwargs.pop("max_retries", 2), concurrency=kwargs.pop("concurrency", 2),
                      backoff_base=0.01, backoff_max=0.02)


def test_it_generates_with_an_endpoint_counting_malformed_answers_and_reporting_each_chunk(chat_server):
    def responder(request):
        if "alpha" in request.text:
            return Reply.text(json.dumps([{"question": "Alpha one?", "answer": "One."}, {"question": "Alpha two?", "answer": "Two."}]))
        if "beta" in request.text:
            return Reply.text('```json\n[{"question": "Beta?", "answer": "B."},\n {"question": "Broken"},]\n```')
        return Reply.text("Sorry, I only speak prose.")

    chat_server.responder = responder
    calls = []
    reporter = RecordingReporter()
    chunks = ["alpha text here.", "beta text here.", "gamma text here."]
    with endpoint_client(chat_server) as client:
        generator = EndpointGenerator(client, task_description="Teach the Greek letters",
                                      on_call=lambda result, hits: calls.append((result.index, result.ok, hits)))
        output = generate_pairs(chunks, generator, num_pairs=6, reporter=reporter)
    assert [(qa.question, qa.chunk_index) for qa in output.pairs] == [("Alpha one?", 0), ("Alpha two?", 0), ("Beta?", 1)]
    assert all(qa.fact == "" for qa in output.pairs)  # plain pairs stand alone
    assert output.malformed == 2 and output.failed_chunks == 0 and output.requested == 6
    assert sorted(calls) == [(0, True, 0), (1, True, 0), (2, True, 0)]
    assert reporter.progress_values[-1] == 1.0 and len(reporter.progress_values) == 3
    assert all("Write 2 question-answer pairs" in r.text and "Teach the Greek letters" in r.text for r in chat_server.chat_requests)


def test_it_keeps_the_phrasings_of_a_fact_together_from_an_endpoint(chat_server):
    chat_server.responder = lambda request: Reply.text(json.dumps(FACTS))
    with endpoint_client(chat_server) as client:
        output = generate_pairs(["The lake is 40 metres deep.", "The Sorrel floods in spring."], EndpointGenerator(client),
                                num_pairs=8, reporter=RecordingReporter())
    assert [r.text.count("Write 4 question-answer pairs") for r in chat_server.chat_requests] == [1, 1]
    # Both chunks got the same two facts; the second chunk's questions repeat the first's and are dropped.
    assert len(output.pairs) == 4 and all(qa.chunk_index == 0 for qa in output.pairs)
    depth = [qa for qa in output.pairs if qa.answer == "40 metres"]
    # The three phrasings of the depth share one key; the other fact has its own.
    assert [len(depth), len({qa.fact for qa in depth})] == [3, 1]
    assert len({qa.fact for qa in output.pairs}) == 2 and all(qa.fact for qa in output.pairs)


def test_it_scrubs_personal_data_before_anything_is_sent(chat_server):
    scrubber = PiiScrubber([("CASE", r"CASE-\d{4}")])
    chunks = ["Contact jane@example.org or +44 20 7946 0958 about CASE-1234."]
    with endpoint_client(chat_server) as client:
        generator = EndpointGenerator(client, task_description="Help jane@example.org", summary="Card 4111 1111 1111 1111",
                                      scrubber=scrubber)
        output = generate_pairs(chunks, generator, num_pairs=1, reporter=RecordingReporter())
    sent = chat_server.chat_requests[0].text
    for secret in ("jane@example.org", "7946", "CASE-1234", "4111"):
        assert secret not in sent
    assert "[EMAIL]" in sent and "[PHONE]" in sent and "[CASE]" in sent and "[CARD]" in sent
    assert generator.pii_replacements == 5 and len(output.pairs) == 1


def test_it_keeps_going_when_some_chunks_fail_and_says_why(chat_server):
    def responder(request):
        return Reply.status(500, "GPU on fire") if "bad" in request.text else default_responder(request)

    chat_server.responder = responder
    reporter = RecordingReporter()
    with endpoint_client(chat_server, max_retries=1) as client:
        output = generate_pairs(["good one.", "bad one.", "good two."], EndpointGenerator(client), num_pairs=3, reporter=reporter)
    assert len(output.pairs) == 2 and output.failed_chunks == 1
    assert output.errors == [f"The endpoint {chat_server.url} had a server error (500). (gave up after 2 attempts)"]
    assert any("Chunk 2 failed" in line for line in reporter.lines)


def test_it_stops_generating_when_asked_to(chat_server):
    chat_server.responder = lambda request: Reply.pairs(1, delay=0.05)
    with endpoint_client(chat_server, concurrency=1) as client, pytest.raises(Cancelled):
        generate_pairs([f"chunk {i}." for i in range(30)], EndpointGenerator(client), num_pairs=30,
                       reporter=RecordingReporter(stop_after_metrics=0))
    assert len(chat_server.chat_requests) < 30


def test_it_refuses_to_run_without_text_or_with_zero_pairs():
    with pytest.raises(ReadableError, match="no extracted text"):
        generate_pairs([], ExtractiveGenerator(), reporter=RecordingReporter())
    with pytest.raises(ReadableError, match="at least one"):
        generate_pairs(["The lake is deep."], ExtractiveGenerator(), num_pairs=0, reporter=RecordingReporter())


def test_it_runs_a_local_model_through_its_chat_template_and_counts_its_junk(tmp_path):
    chunks = ["The capital of the valley is Eldhavn. " * 40, "The longest river is the Sorrel. " * 3, "Unused chunk."]
    reporter = RecordingReporter()
    generator = LocalModelGenerator(TINY_MODEL_ID, task_description="Answer questions about the valley",
                                    max_new_tokens=24, batch_size=2, work_dir=str(tmp_path))
    output = generate_pairs(chunks, generator, num_pairs=2, reporter=reporter)
    # The tiny model is random noise: every answer is unusable, and that is counted rather than fatal.
    assert output.pairs == [] and output.malformed == 2 and output.requested == 2
    assert "loading model" in reporter.phases and reporter.progress_values[-1] == 1.0
    assert reporter.progress_values == [0.5, 1.0]  # one step per chunk
    assert list(tmp_path.iterdir()) == []  # the tiny model's scratch folder is gone


def test_it_explains_a_local_model_that_cannot_be_loaded(tmp_path):
    generator = LocalModelGenerator(str(tmp_path / "missing"), max_new_tokens=8)
    with pytest.raises(ReadableError, match="Could not load the model"):
        generate_pairs(["The lake is deep."], generator, num_pairs=1, reporter=RecordingReporter())
