"""Which format a file really is, told by its content: magic bytes, the member names of a zip, or a look at
its text. The name's extension only chooses between text formats (a .csv and a .txt may hold the same bytes);
a file whose content contradicts a binary format's extension is rejected rather than guessed at.

Pure Python (zipfile, codecs): the web process checks an upload with `detect_format` before any job exists, and
the extractors (workers.engine.extract) read the same limits and decoding rules from here."""
from __future__ import annotations

import codecs
import os
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import PurePath

from workers.common.errors import ReadableError

MB = 1024 * 1024


@dataclass
class Limits:
    """Limits against oversized and hostile files; the server fills them from settings (GARAGE_*)."""

    max_bytes: int = 50 * MB
    # Read from a DOCX/PPTX zip directory before the file is opened: a zip bomb declares its sizes there.
    zip_max_members: int = 5000
    zip_max_uncompressed: int = 300 * MB
    # Seconds for one document; a separate extraction process is killed after it, an in-process one stops
    # at its next page, slide or block.
    time_limit: float = 300.0
    # Address-space limit of a separate extraction process, in MB (0: none).
    memory_mb: int = 3072
    # Text recognition (OCR) of PDF pages without a text layer and of pictures in DOCX and PPTX: at most this
    # many pages and pictures a document (1-3 seconds each on one core), each within its own seconds, in these
    # tesseract languages ("eng", "eng+deu").
    ocr: bool = True
    ocr_max_pages: int = 50
    ocr_page_seconds: float = 60.0
    ocr_languages: str = "eng"

    def as_dict(self) -> dict:
        return asdict(self)


def check_zip(zf: zipfile.ZipFile, *, filename: str, limits: Limits) -> list[str]:
    """The member names, after checking the counts and sizes the zip directory declares.

    Reading a member never yields more than the size its directory entry declares (zipfile stops there and
    then fails the CRC check), so checking the declared sizes before anything is decompressed bounds the
    memory a zip bomb can take."""
    infos = zf.infolist()
    if len(infos) > limits.zip_max_members:
        raise ReadableError(f"'{filename}' holds {len(infos):,} files inside, more than the limit of "
                            f"{limits.zip_max_members:,}; it may be a zip bomb.")
    total = sum(info.file_size for info in infos)
    if total > limits.zip_max_uncompressed:
        raise ReadableError(f"'{filename}' would unpack to {total / 1024 / 1024:,.0f} MB, more than the limit of "
                            f"{limits.zip_max_uncompressed / 1024 / 1024:,.0f} MB; it may be a zip bomb.")
    if any(info.flag_bits & 0x1 for info in infos):
        raise ReadableError(f"'{filename}' is password-protected. Remove the password and upload it again.")
    return [info.filename for info in infos]


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


# The encodings a user can choose when a text file was decoded wrongly (Python codec name: label), in the order
# shown; detection chooses among those marked in DETECTED_ENCODINGS.
TEXT_ENCODINGS = {
    "utf-8": "Unicode (UTF-8)",
    "utf-16": "Unicode (UTF-16)",
    "cp1252": "Western European (Windows-1252)",
    "iso8859-15": "Western European (ISO-8859-15)",
    "mac-roman": "Western European (Mac Roman)",
    "cp850": "Western European (DOS 850)",
    "cp437": "English (DOS 437)",
    "cp1250": "Central European (Windows-1250)",
    "iso8859-2": "Central European (ISO-8859-2)",
    "cp1257": "Baltic (Windows-1257)",
    "cp1251": "Cyrillic (Windows-1251)",
    "koi8-r": "Cyrillic (KOI8-R)",
    "koi8-u": "Ukrainian (KOI8-U)",
    "mac-cyrillic": "Cyrillic (Mac)",
    "iso8859-5": "Cyrillic (ISO-8859-5)",
    "cp1253": "Greek (Windows-1253)",
    "iso8859-7": "Greek (ISO-8859-7)",
    "cp1254": "Turkish (Windows-1254)",
    "cp1255": "Hebrew (Windows-1255)",
    "iso8859-8": "Hebrew (ISO-8859-8)",
    "cp1256": "Arabic (Windows-1256)",
    "cp1258": "Vietnamese (Windows-1258)",
    "cp874": "Thai (Windows-874)",
    "big5": "Chinese, Traditional (Big5)",
    "gb18030": "Chinese, Simplified (GB18030, GBK, GB2312)",
    "cp932": "Japanese (Shift JIS)",
    "euc_jp": "Japanese (EUC-JP)",
    "cp949": "Korean (EUC-KR, CP949)",
}
# Baltic and Vietnamese code pages read Central European text almost as well as its own code pages, and much
# rarer: detection leaves them out (a user can still choose them).
DETECTED_ENCODINGS = [name for name in TEXT_ENCODINGS if name not in ("utf-16", "cp1257", "cp1258")]


def encoding_label(name: str | None) -> str:
    """How an encoding is named to people: "Cyrillic (Windows-1251)"; an unlisted codec by its own name."""
    if not name:
        return ""
    import codecs

    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        return name
    for listed, label in TEXT_ENCODINGS.items():
        if codecs.lookup(listed).name == canonical:
            return label
    return {"utf-16-le": "Unicode (UTF-16 LE)", "utf-16-be": "Unicode (UTF-16 BE)", "utf-32": "Unicode (UTF-32)",
            "utf-32-le": "Unicode (UTF-32 LE)", "utf-32-be": "Unicode (UTF-32 BE)",
            "utf-8-sig": "Unicode (UTF-8)", "iso8859-1": "Western European (ISO-8859-1)",
            "shift_jis": "Japanese (Shift JIS)", "euc_kr": "Korean (EUC-KR, CP949)"}.get(canonical, canonical.upper())


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
                                           "Office document; save it as DOCX or PPTX without a password (LibreOffice "
                                           "converts old files: soffice --headless --convert-to docx FILE.doc, or "
                                           "pptx for slides)"),
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
