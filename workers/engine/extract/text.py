"""Plain text and Markdown, and the decoding every text format shares (the encoding is told by
workers.common.formats.text_encoding). Pure Python."""
from __future__ import annotations

from workers.common.errors import ReadableError
from workers.common.formats import text_encoding
from workers.engine.extract.base import CONTROL, Extracted


def decode_text(data: bytes, filename: str = "this file") -> str:
    """Decode text bytes: a BOM decides, else UTF-16/32 by zero-byte pattern, else UTF-8, else cp1252.
    Raises ReadableError for binary data."""
    encoding = text_encoding(data)
    if encoding is None:
        raise ReadableError(f"'{filename}' looks binary, not like text. Upload PDF, DOCX, PPTX, or a text file.")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        if encoding.startswith("utf-16") or encoding.startswith("utf-32"):
            raise ReadableError(f"'{filename}' is not valid {encoding.upper()} text.")
        text = data.decode("cp1252", errors="replace")
    return text.lstrip("\ufeff")


def extract_plain(data: bytes, *, filename: str, format: str) -> Extracted:
    """Text and Markdown files, one page. The text stays as written (blank lines and spaces can carry meaning in
    Markdown and code); only line endings are unified and control characters dropped."""
    text = decode_text(data, filename).replace("\r\n", "\n").replace("\r", "\n")
    return Extracted(text=CONTROL.sub("", text), format=format)
