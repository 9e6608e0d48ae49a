"""Plain text and Markdown, and the decoding every text format shares. Pure Python."""
from __future__ import annotations

import codecs
import re

from workers.errors import ReadableError
from workers.extract.base import CONTROL, Extracted

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
SAMPLE = 8192


def bom_encoding(data: bytes) -> str | None:
    # UTF-32-LE's BOM starts with UTF-16-LE's, so the 32-bit ones are tried first.
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def wide_encoding(data: bytes) -> str | None:
    """UTF-16 or UTF-32 without a BOM, told by where the zero bytes fall: in text that is mostly Latin
    script, every character has zero high bytes in the same positions."""
    sample = data[:SAMPLE]
    n = len(sample) - len(sample) % 4
    if n < 8:
        return None
    quarter = n // 4
    zeros = [sample[i:n:4].count(0) for i in range(4)]
    many, few = 0.9 * quarter, 0.1 * quarter
    if zeros[0] < few and min(zeros[1:]) > many:
        return "utf-32-le"
    if zeros[3] < few and min(zeros[:3]) > many:
        return "utf-32-be"
    even, odd = zeros[0] + zeros[2], zeros[1] + zeros[3]
    if odd > 0.6 * 2 * quarter and even < 0.05 * 2 * quarter:
        return "utf-16-le"
    if even > 0.6 * 2 * quarter and odd < 0.05 * 2 * quarter:
        return "utf-16-be"
    return None


_BINARY_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def looks_binary(data: bytes) -> bool:
    """Whether bytes (in an 8-bit or UTF-8 encoding) are binary: any NUL, or many control characters."""
    sample = data[:SAMPLE]
    if b"\x00" in sample:
        return True
    return len(_BINARY_CONTROL.findall(sample)) > 0.05 * max(1, len(sample))


def text_encoding(data: bytes) -> str | None:
    """The encoding of text bytes, or None when they look binary. UTF-8 is preferred; cp1252 (what older
    Windows programs write) takes what is not valid UTF-8."""
    encoding = bom_encoding(data) or wide_encoding(data)
    if encoding:
        return encoding
    if looks_binary(data):
        return None
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A head cut off in the middle of a character is still UTF-8.
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
        return "cp1252"


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
