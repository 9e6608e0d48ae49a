"""What every extractor shares: the result, the time guard and text clean-up (the limits are
workers.common.formats.Limits). Pure Python."""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

from workers.common.errors import ReadableError


@dataclass
class Extracted:
    """A document's text and where its pages start.

    `page_offsets[i]` is the character offset in `text` where page (or slide) i + 1 starts; flat formats have
    one page starting at 0. `examples` holds training examples when the file already was training data
    (JSON, JSONL or CSV records; workers.common.records.Example), else None. `encoding` is the text encoding a
    text format was read with (None for binary formats); `ocr_spans` are the [start, end) character ranges of
    `text` that were read from images by OCR; `warnings` are sentences for the user about what may have been
    read wrongly or left out."""

    text: str
    format: str
    pages: int = 1
    page_offsets: list[int] = field(default_factory=lambda: [0])
    examples: list | None = None
    tables: int = 0
    seconds: float = 0.0
    encoding: str | None = None
    ocr_spans: list[list[int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return len(self.text)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["examples"] = [e.as_dict() for e in self.examples] if self.examples is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Extracted":
        data = dict(data)
        if data.get("examples") is not None:
            from workers.common.records import Example

            data["examples"] = [Example(**e) for e in data["examples"]]
        return cls(**data)


class Deadline:
    """The per-document time limit, checked between pages, slides and blocks of pure-Python loops."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.ends = time.monotonic() + seconds if seconds else None

    def check(self) -> None:
        if self.ends is not None and time.monotonic() > self.ends:
            raise ReadableError(too_slow_message(self.seconds))


def too_slow_message(seconds: float) -> str:
    return (f"Extracting this document took longer than the limit of {seconds:g} seconds, so it was stopped. "
            "Split it into smaller files or ask an administrator to raise GARAGE_EXTRACT_TIME_LIMIT.")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or taskset may narrow)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def no_progress(fraction: float, message: str = "") -> None:
    """The progress callback used when nobody listens."""


# Control characters other than tab and newline break databases (PostgreSQL refuses NUL) and mean nothing in
# training text; form feeds and vertical tabs are line breaks in practice.
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffe\uffff]")
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Line endings to \\n, no control characters or ligatures, no trailing spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0b", "\n").replace("\x0c", "\n")
    text = CONTROL.sub("", text).translate(_LIGATURES)
    text = _TRAILING_SPACE.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


PAGE_SEPARATOR = "\n\n"


def join_pages(pages: list[str]) -> tuple[str, list[int]]:
    """Join cleaned page texts with a blank line; returns the text and each page's starting offset.

    An empty page starts where the next text would, so every page keeps its number."""
    parts: list[str] = []
    offsets: list[int] = []
    position = 0
    for page in pages:
        if page:
            if parts:
                parts.append(PAGE_SEPARATOR)
                position += len(PAGE_SEPARATOR)
            offsets.append(position)
            parts.append(page)
            position += len(page)
        else:
            offsets.append(position + (len(PAGE_SEPARATOR) if parts else 0))
    text = "".join(parts)
    return text, [min(offset, len(text)) for offset in offsets] or [0]


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown table, the first row as its header. Cells keep to one line and pipes
    are escaped, so a cell's text can never shift the columns after it."""
    rows = [[_cell(c) for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def damaged(filename: str, kind: str, exc: BaseException) -> ReadableError:
    """The readable error for a file its parser could not read; the parser's own message is internal detail."""
    return ReadableError(f"'{filename}' could not be read as {kind}: the file looks damaged or incomplete "
                         f"({type(exc).__name__}). Open and save it again, or export it anew.")
