"""Training examples in and out of the usual dataset shapes. Pure Python: no Django, no torch.

Reading: `detect_training_examples(records)` recognises records that already are training data:

- ``messages``: chat turns ``{"role": ..., "content": ...}`` (system/user/assistant; "human"/"model"/"gpt" too);
- ``conversations``: ShareGPT turns ``{"from": "human"|"gpt"|"system", "value": ...}`` (role/content accepted too);
- ``prompt``/``completion`` (also ``prompt``/``response``; a prompt may itself be a list of chat turns);
- ``question``/``answer``;
- ``instruction``/``input``/``output`` (Alpaca; the input, when present, follows the instruction after a blank line);
- ``text`` holding a clear question/answer layout ("Question: ... Answer: ...", "Q: ... A: ...",
  "### Human: ... ### Assistant: ...", "User: ... Assistant: ...", Gemma's ``<start_of_turn>`` markup).

Multi-turn conversations keep only their *first* user → assistant exchange (with the system prompt before it).
Our examples are single-turn, and a later turn ("and why?") means nothing without the turns before it, so
splitting a conversation into several examples would teach the model answers to questions it never saw.

`examples_from_records(records, mapping)` applies an explicit column mapping instead, and
`to_jsonl(examples, style)` writes the three export styles ``messages``, ``alpaca`` and ``sharegpt``.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath

from workers.common.encodings import decode_text
from workers.common.errors import ReadableError
from workers.common.formats import bom_encoding, wide_encoding

STYLES = ("messages", "alpaca", "sharegpt")
SHAPES = ("messages", "conversations", "prompt_completion", "question_answer", "alpaca", "text")

# A shape is accepted when at least this share of the records parse under it: a few broken rows in a real
# dataset should not turn the whole file into flat text, but a file where most rows fail is not training data.
MIN_SHARE = 0.8
# Looking at this many records is enough to choose a shape; all records are then parsed under it.
SAMPLE = 200

_USER_ROLES = {"user", "human", "prompter", "question"}
_ASSISTANT_ROLES = {"assistant", "model", "gpt", "bot", "chatgpt", "answer"}
_SYSTEM_ROLES = {"system", "developer"}


@dataclass(frozen=True, kw_only=True)
class Example:
    """One single-turn training example. Fields are keyword-only: Example(question=..., answer=..., system=...)."""

    system: str = ""
    question: str
    answer: str

    def as_dict(self) -> dict:
        return {"system": self.system, "question": self.question, "answer": self.answer}


@dataclass
class Detected:
    """What `parse_training_records` found: the shape's name, the examples and how many records did not fit."""

    shape: str
    examples: list[Example]
    skipped: int


# ---------------------------------------------------------------------------------------------- reading


def _text(value) -> str:
    """Chat content as plain text: a string, or OpenAI-style content parts whose text parts are joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        parts = [part.get("text", "") if isinstance(part, dict) else str(part) for part in value]
        return "\n".join(p for p in parts if isinstance(p, str) and p).strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _turns_example(turns, role_key: str, content_key: str) -> Example | None:
    """The first user → assistant exchange of a list of turns, with any system turn before it."""
    if not isinstance(turns, list):
        return None
    system, question = [], None
    for turn in turns:
        if not isinstance(turn, dict):
            return None
        role = str(turn.get(role_key, turn.get("role", turn.get("from", "")))).strip().lower()
        content = _text(turn.get(content_key, turn.get("content", turn.get("value"))))
        if role in _SYSTEM_ROLES and question is None:
            if content:
                system.append(content)
        elif role in _USER_ROLES:
            # Two user turns in a row: the later one is the question the assistant answers.
            question = content
        elif role in _ASSISTANT_ROLES:
            if question:
                if not content:
                    return None
                return Example(system="\n\n".join(system), question=question, answer=content)
    return None


def _messages(record: dict) -> Example | None:
    return _turns_example(record.get("messages"), "role", "content")


def _conversations(record: dict) -> Example | None:
    return _turns_example(record.get("conversations"), "from", "value")


def _prompt_completion(record: dict) -> Example | None:
    prompt = record.get("prompt")
    completion = record.get("completion", record.get("response", record.get("chosen")))
    if isinstance(prompt, list):
        # TRL's conversational prompt-completion: both sides are lists of turns.
        answer = _text(completion[-1].get("content")) if isinstance(completion, list) and completion and isinstance(completion[-1], dict) else _text(completion)
        example = _turns_example(prompt + [{"role": "assistant", "content": answer}], "role", "content")
        return example
    question, answer = _text(prompt), _text(completion)
    if not question or not answer:
        return None
    return Example(system=_text(record.get("system")), question=question, answer=answer)


def _question_answer(record: dict) -> Example | None:
    question, answer = _text(record.get("question")), _text(record.get("answer"))
    if not question or not answer:
        return None
    return Example(system=_text(record.get("system")), question=question, answer=answer)


def _alpaca(record: dict) -> Example | None:
    instruction, extra, output = _text(record.get("instruction")), _text(record.get("input")), _text(record.get("output"))
    if not instruction or not output:
        return None
    question = f"{instruction}\n\n{extra}" if extra else instruction
    return Example(system=_text(record.get("system")), question=question, answer=output)


# Layouts of a single `text` field that clearly hold one question and its answer. Each pattern must match the
# whole text, so prose that merely contains the word "Answer:" somewhere is not mistaken for an example.
_TEXT_LAYOUTS = [
    re.compile(r"^\s*(?:<bos>)?\s*<start_of_turn>user\s*\n(?P<q>.+?)<end_of_turn>\s*<start_of_turn>model\s*\n(?P<a>.+?)(?:<end_of_turn>.*)?$", re.S),
    re.compile(r"^\s*###\s*(?:Human|User|Instruction|Question)\s*:?\s*\n?(?P<q>.+?)\n\s*###\s*(?:Assistant|Response|Answer)\s*:?\s*\n?(?P<a>.+?)\s*$", re.S | re.I),
    re.compile(r"^\s*(?:Question|Q)\s*:\s*(?P<q>.+?)\n\s*(?:Answer|A)\s*:\s*(?P<a>.+?)\s*$", re.S | re.I),
    re.compile(r"^\s*(?:User|Human)\s*:\s*(?P<q>.+?)\n\s*(?:Assistant|AI|Bot|Model)\s*:\s*(?P<a>.+?)\s*$", re.S | re.I),
]


def _text_layout(record: dict) -> Example | None:
    text = record.get("text")
    if not isinstance(text, str):
        return None
    for pattern in _TEXT_LAYOUTS:
        match = pattern.match(text)
        if match:
            question, answer = match["q"].strip(), match["a"].strip()
            # A second "Question:" inside the answer means several pairs run together; not one clear pair.
            if question and answer and not re.search(r"\n\s*(?:Question|Q|###\s*Human|User)\s*:", answer, re.I):
                return Example(question=question, answer=answer)
    return None


_PARSERS = {
    "messages": (_messages, ("messages",)),
    "conversations": (_conversations, ("conversations",)),
    "prompt_completion": (_prompt_completion, ("prompt",)),
    "question_answer": (_question_answer, ("question", "answer")),
    "alpaca": (_alpaca, ("instruction", "output")),
    "text": (_text_layout, ("text",)),
}


def parse_training_records(records: list) -> Detected | None:
    """Find the shape the records share and parse all of them under it; None when they are not training data."""
    if not isinstance(records, list) or not records:
        return None
    sample = [r for r in records[:SAMPLE]]
    if not all(isinstance(r, dict) for r in sample):
        return None
    for shape in SHAPES:
        parse, keys = _PARSERS[shape]
        if not all(any(k in r for r in sample) for k in keys):
            continue
        if sum(parse(r) is not None for r in sample) < MIN_SHARE * len(sample):
            continue
        examples = []
        for record in records:
            example = parse(record) if isinstance(record, dict) else None
            if example is not None:
                examples.append(example)
        if len(examples) >= MIN_SHARE * len(records):
            return Detected(shape=shape, examples=examples, skipped=len(records) - len(examples))
    return None


def detect_training_examples(records: list[dict]) -> list[Example] | None:
    """The records as training examples when they already look like training data, else None.

    Records that do not fit the shape most of them share are skipped (see `parse_training_records` for the count)."""
    detected = parse_training_records(records)
    return detected.examples if detected else None


def examples_from_records(records: list[dict], mapping: dict) -> list[Example]:
    """Examples from an explicit column mapping: {"question": column, "answer": column, "system": column}.

    A mapped value may also be a list of columns, joined with a blank line (e.g. an instruction and its input).
    Rows whose question or answer is empty are skipped. Raises ReadableError for a mapping naming no known column."""
    mapping = {k: v for k, v in (mapping or {}).items() if v not in (None, "", [])}
    unknown = set(mapping) - {"question", "answer", "system"}
    if unknown:
        raise ReadableError(f"The mapping may name only question, answer and system, not {', '.join(sorted(unknown))}.")
    for role in ("question", "answer"):
        if role not in mapping:
            raise ReadableError(f"Say which column holds the {role}.")
    columns = {role: [value] if isinstance(value, str) else list(value) for role, value in mapping.items()}
    available = set()
    for record in records[:SAMPLE]:
        if isinstance(record, dict):
            available.update(record)
    missing = sorted({c for cols in columns.values() for c in cols} - available)
    if missing:
        shown = ", ".join(sorted(map(str, available))[:30]) or "none"
        raise ReadableError(f"No column named {', '.join(repr(m) for m in missing)}. The columns are: {shown}.")

    def value(record, role):
        return "\n\n".join(t for t in (_text(record.get(c)) for c in columns.get(role, [])) if t)

    examples = []
    for record in records:
        if not isinstance(record, dict):
            continue
        question, answer = value(record, "question"), value(record, "answer")
        if question and answer:
            examples.append(Example(system=value(record, "system"), question=question, answer=answer))
    return examples


def record_columns(records: list[dict]) -> list[str]:
    """Column names seen in the first records, in first-seen order (for mapping forms and error messages)."""
    seen: dict[str, None] = {}
    for record in records[:SAMPLE]:
        if isinstance(record, dict):
            seen.update(dict.fromkeys(map(str, record)))
    return list(seen)


# ---------------------------------------------------------------------------------------------- files


def json_records(value) -> list:
    """A JSON document's records: a list, the one list of objects inside an object ({"data": [...]}), or the
    value itself as the only record."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(i, dict) for i in v[:50])]
        if len(lists) == 1:
            return lists[0]
    return [value]


RECORD_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")
MB = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """How much of a data file is read into memory. The server passes its settings (GARAGE_IMPORT_MAX_ROWS,
    GARAGE_IMPORT_MAX_MB); a file beyond a limit ends in a ReadableError before it is parsed whole, since a
    few kilobytes of Parquet or JSON can otherwise expand to gigabytes of Python objects."""

    max_rows: int = 100_000
    max_bytes: int = 256 * MB  # text of a JSON/CSV file, or decoded column data of a Parquet file
    max_depth: int = 32  # nesting of JSON values; chat records need about six levels
    max_field_chars: int = 131_072  # one CSV field: the csv module's default; pairs keep at most 100,000 anyway


def _too_many_rows(filename: str, limits: ReadLimits, rows: int | None = None) -> ReadableError:
    counted = f"{rows:,} rows" if rows is not None else "more rows than that"
    return ReadableError(f"'{filename}' has {counted}; imports take at most {limits.max_rows:,} "
                         "(the server's GARAGE_IMPORT_MAX_ROWS). Split the file and import the parts.")


def _too_big(filename: str, limits: ReadLimits) -> ReadableError:
    return ReadableError(f"'{filename}' holds more than {limits.max_bytes // MB:,} MB of data once unpacked; imports take "
                         "at most that much (the server's GARAGE_IMPORT_MAX_MB). Split the file and import the parts.")


def load_records(data: bytes, filename: str, limits: ReadLimits | None = None) -> tuple[str, list]:
    """Parse a JSON, JSONL, CSV/TSV or Parquet file into records within `limits` (defaults: ReadLimits()).
    Returns (format, records); ReadableError when it cannot, or when the file is beyond a limit."""
    limits = limits or ReadLimits()
    suffix = PurePath(filename or "").suffix.lower()
    if not data.strip():
        raise ReadableError(f"'{filename}' is empty.")
    if suffix == ".parquet" or data[:4] == b"PAR1":
        return ("parquet", _parquet_records(data, filename, limits))
    if len(data) > limits.max_bytes:
        raise _too_big(filename, limits)
    if b"\x00" in data[:4096] and not (bom_encoding(data) or wide_encoding(data)):
        raise ReadableError(f"'{filename}' looks binary, not like JSON, JSONL or CSV.")
    text = decode_text(data, filename).text
    stripped = text.lstrip()
    if suffix in {".csv", ".tsv"} or (suffix not in {".json", ".jsonl", ".ndjson"} and stripped[:1] not in "[{"):
        return ("csv", _csv_records(text, tab=suffix == ".tsv", filename=filename, limits=limits))
    if suffix in {".jsonl", ".ndjson"} or (suffix != ".json" and "\n{" in stripped and not stripped.startswith("[")):
        return ("jsonl", _jsonl_records(text, filename, limits))
    try:
        value = _json_value(text, filename, limits)
    except json.JSONDecodeError as exc:
        # A .json file that is really JSON Lines is common; try that before giving up.
        try:
            return ("jsonl", _jsonl_records(text, filename, limits))
        except ReadableError:
            raise ReadableError(f"'{filename}' is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.")
    if not isinstance(value, (list, dict)):
        raise ReadableError("This JSON file holds a single value, not records.")
    records = json_records(value)
    if len(records) > limits.max_rows:
        raise _too_many_rows(filename, limits, len(records))
    return ("json", records)


def _json_value(text: str, filename: str, limits: ReadLimits, line: int | None = None):
    """json.loads, with nesting deeper than the limit refused (the C parser itself stops near Python's
    recursion limit with a RecursionError, which is answered the same way)."""
    where = f"'{filename}' line {line}" if line is not None else f"'{filename}'"
    try:
        value = json.loads(text)
    except RecursionError:
        raise ReadableError(f"{where} is nested too deeply to read.") from None
    # Walk the containers breadth-first: no recursion, and it stops at the first level past the limit.
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limits.max_depth:
            raise ReadableError(f"{where} is nested more than {limits.max_depth} levels deep; training records need far fewer.")
        level = [child for item in level if isinstance(item, (list, dict))
                 for child in (item.values() if isinstance(item, dict) else item) if isinstance(child, (list, dict))]
    return value


def _parquet_records(data: bytes, filename: str, limits: ReadLimits) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pyarrow comes with `datasets`; a slim install may lack it
        raise ReadableError("Parquet files need the pyarrow package, which this server lacks. Export the data as JSONL or CSV.")
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        metadata = parquet.metadata
        chunk_sizes = [metadata.row_group(g).column(c).total_uncompressed_size
                       for g in range(metadata.num_row_groups) for c in range(metadata.num_columns)]
    except Exception as exc:  # pyarrow raises several unrelated types for damaged files
        raise ReadableError(f"'{filename}' is not a readable Parquet file ({type(exc).__name__}).")
    # The footer tells the row count and the unpacked size of every column chunk: refuse before reading.
    if metadata.num_rows > limits.max_rows:
        raise _too_many_rows(filename, limits, metadata.num_rows)
    if sum(chunk_sizes) > limits.max_bytes:
        raise _too_big(filename, limits)
    # A dictionary-encoded value is stored once but decoded for every row that uses it, so the footer's sizes can
    # understate the decoded data a thousandfold. Read in batches small enough that one batch of the largest
    # values stays within the limit, and stop as soon as the decoded total passes it.
    batch_rows = max(1, min(1024, limits.max_bytes // max(1, 2 * max(chunk_sizes, default=1))))
    records, decoded = [], 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows):
            decoded += batch.nbytes
            if decoded > limits.max_bytes:
                raise _too_big(filename, limits)
            records.extend(batch.to_pylist())
    except ReadableError:
        raise
    except Exception as exc:
        raise ReadableError(f"'{filename}' is not a readable Parquet file ({type(exc).__name__}).")
    return records


def _jsonl_records(text: str, filename: str = "", limits: ReadLimits | None = None) -> list:
    limits = limits or ReadLimits()
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(records) >= limits.max_rows:
            raise _too_many_rows(filename, limits)
        try:
            records.append(_json_value(line, filename, limits, line=number))
        except json.JSONDecodeError as exc:
            raise ReadableError(f"Line {number} is not valid JSON: {exc.msg} at column {exc.colno}.")
    return records


def _csv_records(text: str, tab: bool = False, filename: str = "", limits: ReadLimits | None = None) -> list[dict]:
    limits = limits or ReadLimits()
    sample = text[:8192]
    if tab:
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ReadableError(f"This CSV file could not be read: {exc}.")
    if not fieldnames or not any(name and name.strip() for name in fieldnames):
        raise ReadableError("This CSV file has no header row naming its columns.")
    records = []
    field_too_long = ReadableError(f"'{filename}' has a field longer than {limits.max_field_chars:,} characters, more "
                                   "than a question or an answer can hold.")
    try:
        for row in reader:
            if len(records) >= limits.max_rows:
                raise _too_many_rows(filename or "This CSV file", limits)
            # csv's own field limit is one setting for the whole process (other readers raise it), so the
            # import checks its own.
            if any(len(v) > limits.max_field_chars for v in row.values() if isinstance(v, str)):
                raise field_too_long
            records.append({(k or "").strip(): v for k, v in row.items() if k is not None})
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise field_too_long from None
        raise ReadableError(f"This CSV file could not be read: {exc}.")
    return records


# ---------------------------------------------------------------------------------------------- writing


def example_record(example: Example, style: str) -> dict:
    """One example in one export style."""
    if style == "messages":
        turns = [{"role": "system", "content": example.system}] if example.system else []
        return {"messages": turns + [{"role": "user", "content": example.question},
                                     {"role": "assistant", "content": example.answer}]}
    if style == "alpaca":
        record = {"instruction": example.question, "input": "", "output": example.answer}
        if example.system:
            record["system"] = example.system
        return record
    if style == "sharegpt":
        turns = [{"from": "system", "value": example.system}] if example.system else []
        return {"conversations": turns + [{"from": "human", "value": example.question},
                                          {"from": "gpt", "value": example.answer}]}
    raise ReadableError(f"Unknown export style '{style}'. Choose one of: {', '.join(STYLES)}.")


def jsonl_lines(examples: Iterable[Example], style: str) -> Iterator[str]:
    """The JSONL lines (each ending in a newline) of examples in a style; for streaming large exports."""
    if style not in STYLES:
        raise ReadableError(f"Unknown export style '{style}'. Choose one of: {', '.join(STYLES)}.")
    for example in examples:
        yield json.dumps(example_record(example, style), ensure_ascii=False) + "\n"


def to_jsonl(examples: Iterable[Example], style: str) -> str:
    """All examples as one JSONL text in `style` (messages, alpaca or sharegpt)."""
    return "".join(jsonl_lines(examples, style))


# ---------------------------------------------------------------------------------------------- the Hub

# owner/name only: a bare name such as "json", "csv" or "imagefolder" is one of the `datasets` library's own
# builders, which reads data files from the working directory instead of the Hub.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w-]*(?:\.[\w-]+)*/[A-Za-z0-9][\w-]*(?:\.[\w-]+)*$")
_TRUE = {"1", "true", "yes", "on"}


def hub_dataset_id_check(dataset_id: str) -> str:
    """The id when it can only name a dataset on the Hugging Face Hub; ReadableError otherwise.

    `datasets.load_dataset(id)` reads a local file or folder of that name, relative to the working directory,
    before it asks the Hub. A worker's working directory may hold every user's uploads (var/media), so an id
    that exists as a local path is refused: checked where the data is loaded, in the process that loads it."""
    dataset_id = (dataset_id or "").strip()
    if len(dataset_id) > 200 or not HUB_ID.match(dataset_id):
        raise ReadableError(f"'{dataset_id[:200]}' is not a Hugging Face dataset id such as 'openai/gsm8k'.")
    if os.path.lexists(dataset_id):
        raise ReadableError(f"'{dataset_id}' is also the name of a folder on this server, so it is not read: "
                            "only datasets on the Hugging Face Hub can be imported by id.")
    return dataset_id


def hub_offline(environ=None) -> bool:
    """Whether the Hugging Face libraries were told to stay offline (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE)."""
    environ = os.environ if environ is None else environ
    return any(str(environ.get(name, "")).strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
