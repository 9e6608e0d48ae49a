"""Plain text and Markdown (decoded by workers.common.encodings, as every text format is). Pure Python."""
from __future__ import annotations

from workers.common.encodings import decode_text
from workers.engine.extract.base import CONTROL, Extracted


def extract_plain(data: bytes, *, filename: str, format: str, encoding: str | None = None) -> Extracted:
    """Text and Markdown files, one page. The text stays as written (blank lines and spaces can carry meaning in
    Markdown and code); only line endings are unified and control characters dropped."""
    decoded = decode_text(data, filename, encoding=encoding)
    text = decoded.text.replace("\r\n", "\n").replace("\r", "\n")
    return Extracted(text=CONTROL.sub("", text), format=format, encoding=decoded.encoding, warnings=decoded.warnings)
