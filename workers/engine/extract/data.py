"""JSON, JSON Lines and CSV: training examples when the records already are training data, else readable
text (one block of "key: value" lines per record). Pure Python."""
from __future__ import annotations

import csv
import io
import json

from workers.common.errors import ReadableError
from workers.engine.extract.base import Deadline, Extracted, clean_text
from workers.common.encodings import Decoded, decode_text
from workers.common.records import json_records

MAX_DEPTH = 6  # deeper nesting is shown as compact JSON


def detect_examples(records: list) -> list | None:
    """Training examples in the records (workers.common.records.detect_training_examples), or None."""
    try:
        from workers.common.records import detect_training_examples
    except ImportError:  # a build without the records module treats every file as plain data
        return None
    if not records or not all(isinstance(r, dict) for r in records[:200]):
        return None
    return detect_training_examples(records)


def _lines(value, key: str, depth: int, out: list[str]) -> None:
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            out.append(f"{key}: {json.dumps(value, ensure_ascii=False)}" if key else json.dumps(value, ensure_ascii=False))
            return
        for k, v in value.items():
            _lines(v, f"{key}.{k}" if key else str(k), depth + 1, out)
    elif isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            joined = ", ".join(_scalar(v) for v in value)
            out.append(f"{key}: {joined}" if key else joined)
        else:
            for i, v in enumerate(value):
                _lines(v, f"{key}[{i}]" if key else f"[{i}]", depth + 1, out)
    else:
        out.append(f"{key}: {_scalar(value)}" if key else _scalar(value))


def _scalar(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def records_text(records: list, deadline: Deadline | None = None) -> str:
    """Each record as a block of "key: value" lines (nested keys dotted), blocks a blank line apart."""
    blocks = []
    for number, record in enumerate(records):
        if deadline is not None and number % 1000 == 0:
            deadline.check()
        lines: list[str] = []
        _lines(record, "", 0, lines)
        block = "\n".join(line for line in lines if line.strip())
        if block.strip():
            blocks.append(block)
    return clean_text("\n\n".join(blocks))


def extract_json(data: bytes, *, filename: str, deadline: Deadline | None = None,
                 encoding: str | None = None) -> Extracted:
    decoded = decode_text(data, filename, encoding=encoding)
    try:
        value = json.loads(decoded.text)
    except json.JSONDecodeError as exc:
        # A .json file that really is JSON Lines is common; read it as such before giving up.
        try:
            return extract_jsonl(data, filename=filename, deadline=deadline, encoding=encoding)
        except ReadableError:
            raise ReadableError(f"'{filename}' is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.")
    except RecursionError:
        raise ReadableError(f"'{filename}' is nested too deeply to read.")
    records = json_records(value)
    examples = detect_examples(records)
    # Without examples, the text shows the whole document, not only the list of records inside it.
    return _records_result(records if examples or isinstance(value, list) else [value], "json", deadline, examples,
                           decoded)


def extract_jsonl(data: bytes, *, filename: str, deadline: Deadline | None = None,
                  encoding: str | None = None) -> Extracted:
    decoded = decode_text(data, filename, encoding=encoding)
    records = []
    for number, line in enumerate(decoded.text.splitlines(), start=1):
        if deadline is not None and number % 1000 == 0:
            deadline.check()
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ReadableError(f"'{filename}' line {number} is not valid JSON: {exc.msg} at column {exc.colno}.")
        except RecursionError:
            raise ReadableError(f"'{filename}' line {number} is nested too deeply to read.")
    return _records_result(records, "jsonl", deadline, detect_examples(records), decoded)


def _records_result(records: list, format: str, deadline: Deadline | None, examples: list | None,
                    decoded: Decoded) -> Extracted:
    return Extracted(text=records_text(records, deadline), format=format, examples=examples or None,
                     encoding=decoded.encoding, warnings=decoded.warnings)


def csv_rows(text: str, *, filename: str, tab: bool = False) -> list[dict]:
    """Rows of a CSV (or TSV) text with a header row, keyed by the header's names."""
    if tab:
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    csv.field_size_limit(16 * 1024 * 1024)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise ReadableError(f"'{filename}' has no header row naming its columns (the first row of a CSV file).")
        names = [name.strip() or f"column {i + 1}" for i, name in enumerate(header)]
        rows = []
        for row in reader:
            if any(cell.strip() for cell in row):
                record = {names[i] if i < len(names) else f"column {i + 1}": cell for i, cell in enumerate(row)}
                rows.append(record)
    except csv.Error as exc:
        raise ReadableError(f"'{filename}' could not be read as CSV: {exc}.")
    return rows


def extract_csv(data: bytes, *, filename: str, deadline: Deadline | None = None,
                encoding: str | None = None) -> Extracted:
    decoded = decode_text(data, filename, encoding=encoding)
    rows = csv_rows(decoded.text, filename=filename, tab=filename.lower().endswith(".tsv"))
    examples = detect_examples(rows)
    blocks = []
    for number, row in enumerate(rows):
        if deadline is not None and number % 1000 == 0:
            deadline.check()
        block = "\n".join(f"{k}: {' '.join(str(v).split())}" for k, v in row.items() if str(v).strip())
        if block:
            blocks.append(block)
    return Extracted(text=clean_text("\n\n".join(blocks)), format="csv", examples=examples or None,
                     encoding=decoded.encoding, warnings=decoded.warnings)
