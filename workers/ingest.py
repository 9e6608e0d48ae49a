"""Text extraction and chunking. Pure Python: no Django, no torch."""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from workers.errors import ReadableError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}


@dataclass
class Extracted:
    text: str
    format: str
    pages: int = 1


@dataclass
class TextChunk:
    index: int
    text: str
    char_start: int
    char_end: int


def decode_text(data: bytes) -> str:
    """Decode bytes honouring a BOM, else UTF-8, else cp1252 (the usual encoding of older Windows files)."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(encoding)
    if b"\x00" in data[:4096]:
        raise ReadableError("This file looks binary, not like text. Upload a .txt or .md file.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def extract_text(path: str | Path, *, original_name: str = "") -> Extracted:
    """Read a text document. Raises ReadableError for unsupported, binary or empty files."""
    path = Path(path)
    suffix = Path(original_name or path.name).suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise ReadableError(f"Files of type '{suffix or 'none'}' are not supported yet. Upload a .txt or .md file.")
    text = decode_text(path.read_bytes()).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ReadableError("This document contains no text.")
    return Extracted(text=text, format="markdown" if suffix in {".md", ".markdown"} else "text")


_PARAGRAPH = re.compile(r"\n\s*\n")


def chunk_text(text: str, *, size: int = 1200, overlap: int = 150) -> list[TextChunk]:
    """Split text into chunks of about `size` characters at paragraph boundaries (sentences when a paragraph
    is too long), each chunk starting `overlap` characters before the previous one ended."""
    if size <= overlap:
        raise ValueError("chunk size must exceed the overlap")
    pieces: list[tuple[int, int]] = []
    for start, end in _spans(text, _PARAGRAPH):
        if end - start <= size:
            pieces.append((start, end))
        else:
            pieces.extend(_sentence_spans(text, start, end, size))
    chunks: list[TextChunk] = []
    cur_start, cur_end = None, None
    for start, end in pieces:
        if cur_start is None:
            cur_start, cur_end = start, end
        elif end - cur_start <= size:
            cur_end = end
        else:
            chunks.append(TextChunk(len(chunks), text[cur_start:cur_end], cur_start, cur_end))
            overlap_start = max(cur_start, cur_end - overlap)
            # Start the overlap at a word boundary so no chunk begins mid-word.
            space = text.find(" ", overlap_start, cur_end)
            cur_start = min(space + 1 if space != -1 else start, start)
            cur_end = end
    if cur_start is not None:
        chunks.append(TextChunk(len(chunks), text[cur_start:cur_end], cur_start, cur_end))
    return chunks


def _spans(text: str, separator: re.Pattern) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for match in separator.finditer(text):
        if text[pos:match.start()].strip():
            spans.append(_strip_span(text, pos, match.start()))
        pos = match.end()
    if text[pos:].strip():
        spans.append(_strip_span(text, pos, len(text)))
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _sentence_spans(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    spans = []
    for s, e in _spans(text[start:end], _SENTENCE_END):
        s, e = s + start, e + start
        while e - s > size:  # a single endless "sentence": cut it hard
            spans.append((s, s + size))
            s += size
        spans.append((s, e))
    return spans
