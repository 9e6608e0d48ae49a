"""Which format a file really is, told by its content: magic bytes, the member names of a zip, or a look at
its text. The name's extension only chooses between text formats (a .csv and a .txt may hold the same bytes);
a file whose content contradicts a binary format's extension is rejected rather than guessed at."""
from __future__ import annotations

import os
import zipfile
from pathlib import PurePath

from workers.errors import ReadableError
from workers.extract.base import Limits
from workers.extract.office import check_zip
from workers.extract.text import text_encoding

SUPPORTED = "PDF, DOCX, PPTX, TXT, MD, HTML, CSV, JSON or JSONL"
BINARY_FORMATS = {"pdf", "docx", "pptx"}
TEXT_FORMATS = {"text", "markdown", "html", "csv", "json", "jsonl"}
FORMATS = tuple(sorted(BINARY_FORMATS | TEXT_FORMATS))

EXTENSIONS = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx",
    ".txt": "text", ".text": "text", ".log": "text", ".rst": "text",
    ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".csv": "csv", ".tsv": "csv",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
}
# The suffixes an upload form may offer (its `accept` list) and the help texts name.
ACCEPT = ",".join(sorted(EXTENSIONS))
HEAD = 64 * 1024

# Magic numbers of files people upload by mistake, for a message that says what the file is.
_OTHER = [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old binary Office file (.doc, .ppt or .xls) or a password-protected "
                                           "Office document; save it as DOCX or PPTX without a password"),
    (b"{\\rtf", "a Rich Text (RTF) file; save it as DOCX or TXT"),
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"), (b"MZ", "a Windows program"), (b"%!PS", "a PostScript file"),
    (b"ID3", "an MP3 audio file"), (b"OggS", "an Ogg media file"), (b"fLaC", "a FLAC audio file"),
    (b"PAR1", "a Parquet file; import it from the dataset's Import page"),
]


def _unsupported(filename: str, what: str) -> ReadableError:
    return ReadableError(f"'{filename}' is {what}, which is not supported. Upload {SUPPORTED} files.")


def _read_head(source) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read(HEAD)
    source.seek(0)
    head = source.read(HEAD)
    source.seek(0)
    return head


def _zip_format(source, *, filename: str, limits: Limits) -> str:
    try:
        with zipfile.ZipFile(source) as zf:
            names = set(check_zip(zf, filename=filename, limits=limits))
    except zipfile.BadZipFile:
        raise ReadableError(f"'{filename}' is damaged or incomplete: its zip directory cannot be read "
                            "(DOCX and PPTX files are zip archives). Upload the whole file again.")
    finally:
        if not isinstance(source, (str, os.PathLike)):
            source.seek(0)
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "xl/workbook.xml" in names:
        raise _unsupported(filename, "an Excel workbook; save the sheet as CSV")
    if "mimetype" in names and any(n.startswith("META-INF/") for n in names):
        raise _unsupported(filename, "an OpenDocument or EPUB file; save it as DOCX")
    raise _unsupported(filename, "a zip archive; upload the documents inside it one by one")


def _sniff_text(head: bytes, encoding: str) -> str:
    """The text format of a file without a telling extension: HTML, JSON, JSON Lines, Markdown or plain text."""
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    lower = text[:1024].lower()
    if lower.startswith(("<!doctype html", "<html")) or ("<body" in lower and "</" in lower):
        return "html"
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return "jsonl" if len(lines) > 1 and lines[0].endswith("}") and lines[1].startswith("{") else "json"
    if any(line.startswith(("# ", "## ", "### ", "```")) for line in text.splitlines()[:200]):
        return "markdown"
    return "text"


def detect_format(source, *, filename: str = "", limits: Limits | None = None) -> str:
    """The format of a file (a path, or a seekable binary file object), one of FORMATS.

    Raises ReadableError for empty, unsupported, mislabeled, damaged or password-protected files and for zips
    over the limits (only the zip directory is read)."""
    limits = limits or Limits()
    filename = filename or (str(source) if isinstance(source, (str, os.PathLike)) else "this file")
    filename = PurePath(filename).name
    suffix = PurePath(filename).suffix.lower()
    claimed = EXTENSIONS.get(suffix)
    head = _read_head(source)
    if not head:
        raise ReadableError(f"'{filename}' is empty.")
    # A PDF header may follow some junk; readers look for it in the first kilobyte.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_format(source, filename=filename, limits=limits)
    for magic, what in _OTHER:
        if head.startswith(magic) and (magic != b"MZ" or b"\x00" in head[:512]):
            raise _unsupported(filename, what)
    encoding = text_encoding(head)
    if encoding is None:
        raise ReadableError(f"'{filename}' looks binary, not like any supported format. Upload {SUPPORTED} files.")
    if claimed in BINARY_FORMATS:
        raise ReadableError(f"'{filename}' is named like a {claimed.upper()} file but holds plain text. "
                            f"Rename it (.txt, .md, .html, .csv, .json) if it is text, or upload the real {claimed.upper()}.")
    if claimed in TEXT_FORMATS:
        return claimed
    if suffix:
        raise ReadableError(f"'{filename}': files of type '{suffix}' are not supported. Upload {SUPPORTED} files.")
    return _sniff_text(head, encoding)
