"""Training records in and out: shape detection, column mapping, data files, and the three export styles."""
import codecs
import io
import json

import pytest

from workers.common.errors import ReadableError
from workers.common.records import (
    STYLES,
    Example,
    detect_training_examples,
    examples_from_records,
    load_records,
    parse_training_records,
    record_columns,
    to_jsonl,
)


def test_it_takes_the_first_exchange_of_a_chat_with_its_system_prompt():
    records = [{"messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What colour is the sky on Lumen?"},
        {"role": "assistant", "content": "Green."},
        {"role": "user", "content": "And why?"},
        {"role": "assistant", "content": "Copper dust."},
    ]}]
    assert detect_training_examples(records) == [Example(system="Answer briefly.", question="What colour is the sky on Lumen?",
                                                         answer="Green.")]


def test_it_reads_content_parts_and_other_role_names():
    records = [{"messages": [{"role": "human", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
                             {"role": "model", "content": "Hello."}]}]
    assert detect_training_examples(records) == [Example(question="Hi\nthere", answer="Hello.")]


@pytest.mark.parametrize("record, expected", [
    ({"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]},
     Example(system="Be kind.", question="Q?", answer="A.")),
    ({"prompt": "Q?", "completion": "A."}, Example(question="Q?", answer="A.")),
    ({"prompt": "Q?", "response": "A.", "system": "S"}, Example(system="S", question="Q?", answer="A.")),
    ({"prompt": [{"role": "user", "content": "Q?"}], "completion": [{"role": "assistant", "content": "A."}]},
     Example(question="Q?", answer="A.")),
    ({"question": "Q?", "answer": 42}, Example(question="Q?", answer="42")),
    ({"instruction": "Translate to French.", "input": "cat", "output": "chat"},
     Example(question="Translate to French.\n\ncat", answer="chat")),
    ({"instruction": "Name a colour.", "input": "", "output": "Red"}, Example(question="Name a colour.", answer="Red")),
    ({"text": "Question: What is 2+2?\nAnswer: 4"}, Example(question="What is 2+2?", answer="4")),
    ({"text": "### Human: Hello?\n### Assistant: Hi!"}, Example(question="Hello?", answer="Hi!")),
    ({"text": "User: Ping\nAssistant: Pong"}, Example(question="Ping", answer="Pong")),
    ({"text": "<start_of_turn>user\nWho?<end_of_turn>\n<start_of_turn>model\nMe.<end_of_turn>\n"}, Example(question="Who?", answer="Me.")),
])
def test_it_recognises_every_known_shape(record, expected):
    assert detect_training_examples([record]) == [expected]


@pytest.mark.parametrize("records", [
    [{"text": "The valley has three rivers. The Answer: is not here."}],
    [{"text": "Question: one?\nAnswer: yes\nQuestion: two?\nAnswer: no"}],
    [{"title": "Report", "body": "Sales rose."}],
    [{"question": "Q?"}],
    ["just", "strings"],
    [],
    [{"messages": [{"role": "user", "content": "Nobody answered"}]}],
])
def test_it_answers_none_when_records_are_not_training_data(records):
    assert detect_training_examples(records) is None


def test_it_skips_a_few_broken_rows_but_not_a_mostly_broken_file():
    good = [{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(9)]
    detected = parse_training_records(good + [{"question": "lonely"}])
    assert detected.shape == "question_answer" and len(detected.examples) == 9 and detected.skipped == 1
    assert detect_training_examples(good[:2] + [{"question": "x"}] * 8) is None


def test_it_maps_columns_including_joined_ones():
    records = [{"q": "Sum?", "ctx": "1 and 2", "a": "3", "sys": "Be exact."}, {"q": "", "a": "dropped"}]
    assert examples_from_records(records, {"question": ["q", "ctx"], "answer": "a", "system": "sys"}) == [
        Example(system="Be exact.", question="Sum?\n\n1 and 2", answer="3")]


def test_it_names_the_columns_when_a_mapping_is_wrong():
    with pytest.raises(ReadableError, match=r"No column named 'prompt'\. The columns are: a, q"):
        examples_from_records([{"q": "x", "a": "y"}], {"question": "prompt", "answer": "a"})
    with pytest.raises(ReadableError, match="which column holds the answer"):
        examples_from_records([{"q": "x"}], {"question": "q"})
    assert record_columns([{"b": 1, "a": 2}, {"c": 3}]) == ["b", "a", "c"]


def test_it_loads_json_jsonl_csv_tsv_and_parquet():
    assert load_records(b'[{"a": 1}]', "x.json") == ("json", [{"a": 1}])
    assert load_records(b'{"version": 2, "data": [{"a": 1}, {"a": 2}]}', "x.json") == ("json", [{"a": 1}, {"a": 2}])
    assert load_records(b'{"a": 1}\n\n{"a": 2}\n', "x.jsonl") == ("jsonl", [{"a": 1}, {"a": 2}])
    assert load_records(b'{"a": 1}\n{"a": 2}\n', "mislabelled.json") == ("jsonl", [{"a": 1}, {"a": 2}])
    assert load_records(b'q;a\nWhy?;"Because; so"\n', "x.csv") == ("csv", [{"q": "Why?", "a": "Because; so"}])
    assert load_records(b"q\ta\nWhy?\tBecause\n", "x.tsv") == ("csv", [{"q": "Why?", "a": "Because"}])
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"question": ["Q?"], "answer": ["A."]}), buffer)
    assert load_records(buffer.getvalue(), "x.parquet") == ("parquet", [{"question": "Q?", "answer": "A."}])


def test_it_decodes_utf16_and_cp1252_files():
    text = "question,answer\nCafé?,Crème brûlée\n"
    for data in (codecs.BOM_UTF16_LE + text.encode("utf-16-le"), text.encode("cp1252"), codecs.BOM_UTF8 + text.encode()):
        assert load_records(data, "menu.csv")[1] == [{"question": "Café?", "answer": "Crème brûlée"}]


@pytest.mark.parametrize("data, name, message", [
    (b"", "e.jsonl", "is empty"),
    (b'{"a": 1}\n{"a": \n', "x.jsonl", "Line 2 is not valid JSON"),
    (b'[{"a": 1},', "x.json", "is not valid JSON"),
    (b"\x00\x01\x02binary", "x.json", "looks binary"),
    (b"PAR1garbage", "x.parquet", "not a readable Parquet file"),
])
def test_it_rejects_bad_files_readably(data, name, message):
    with pytest.raises(ReadableError, match=message):
        load_records(data, name)


EXAMPLES = [Example(system="You are terse.", question="What is 2+2?", answer="4"),
            Example(question="Line\nbreaks \"and\" ünïcode?", answer="Kept: ✓")]


@pytest.mark.parametrize("style", STYLES)
def test_it_round_trips_every_export_style(style):
    text = to_jsonl(EXAMPLES, style)
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n") and "ünïcode" in text
    records = [json.loads(line) for line in lines]
    assert detect_training_examples(records) == EXAMPLES


def test_it_writes_each_style_in_its_usual_layout():
    example = [EXAMPLES[0]]
    assert json.loads(to_jsonl(example, "messages")) == {"messages": [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"}]}
    assert json.loads(to_jsonl(example, "alpaca")) == {"instruction": "What is 2+2?", "input": "", "output": "4",
                                                       "system": "You are terse."}
    assert json.loads(to_jsonl(example, "sharegpt")) == {"conversations": [
        {"from": "system", "value": "You are terse."}, {"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4"}]}
    with pytest.raises(ReadableError, match="Unknown export style"):
        to_jsonl(example, "csv")
