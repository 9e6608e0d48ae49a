"""Document extraction: format detection by content and one extractor per format. Pure Python apart from the
PDF and Office libraries; no Django, no torch.

    extracted = extract_file(path, filename="report.pdf", limits=Limits(...))

returns an Extracted (text, format, pages, page_offsets, examples, ...) or raises ReadableError with a message
for the user. `extract_isolated` runs the same in a separate process with a hard time and memory limit, so
that a hostile file can neither hang nor take down the worker that reads it."""
from __future__ import annotations

import os
import time
from pathlib import PurePath

from workers.common.errors import ReadableError
from workers.common.formats import ACCEPT, EXTENSIONS, FORMATS, SUPPORTED, Limits, detect_format
from workers.engine.extract.base import Deadline, Extracted, no_progress
from workers.common.encodings import decode_text

__all__ = ["ACCEPT", "EXTENSIONS", "FORMATS", "SUPPORTED", "Extracted", "Limits", "decode_text", "detect_format",
           "extract_file", "extract_isolated"]


def extract_file(path: str | os.PathLike, *, filename: str = "", limits: Limits | None = None,
                 progress=no_progress, encoding: str | None = None) -> Extracted:
    """Detect the file's format by content and extract its text with page offsets (and training examples for
    data files). `progress(fraction, message)` hears about pages and slides; `encoding` is the user's choice for
    a text format (else it is told by the file). Raises ReadableError."""
    started = time.monotonic()
    limits = limits or Limits()
    path = os.fspath(path)
    filename = PurePath(filename or path).name
    size = os.path.getsize(path)
    if size == 0:
        raise ReadableError(f"'{filename}' is empty.")
    if size > limits.max_bytes:
        raise ReadableError(f"'{filename}' is larger than the upload limit of {limits.max_bytes / 1024 / 1024:,.0f} MB.")
    deadline = Deadline(limits.time_limit)
    file_format = detect_format(path, filename=filename, limits=limits)
    extracted = _extract(path, file_format, filename=filename, limits=limits, deadline=deadline, progress=progress,
                         encoding=encoding)
    if not extracted.text.strip() and not extracted.examples:
        raise ReadableError(f"'{filename}' contains no text.")
    extracted.seconds = round(time.monotonic() - started, 4)
    return extracted


def _extract(path: str, file_format: str, *, filename: str, limits: Limits, deadline: Deadline, progress,
             encoding: str | None) -> Extracted:
    if file_format == "pdf":
        from workers.engine.extract.pdf import extract_pdf

        return extract_pdf(path, filename=filename, limits=limits, deadline=deadline, progress=progress)
    if file_format == "docx":
        from workers.engine.extract.office import extract_docx

        return extract_docx(path, filename=filename, limits=limits, deadline=deadline, progress=progress)
    if file_format == "pptx":
        from workers.engine.extract.office import extract_pptx

        return extract_pptx(path, filename=filename, limits=limits, deadline=deadline, progress=progress)
    with open(path, "rb") as f:
        data = f.read()
    if file_format == "html":
        from workers.engine.extract.html import extract_html

        return extract_html(data, filename=filename, deadline=deadline, encoding=encoding)
    if file_format in ("json", "jsonl", "csv"):
        from workers.engine.extract import data as records

        extractor = {"json": records.extract_json, "jsonl": records.extract_jsonl, "csv": records.extract_csv}[file_format]
        return extractor(data, filename=filename, deadline=deadline, encoding=encoding)
    from workers.engine.extract.text import extract_plain

    return extract_plain(data, filename=filename, format=file_format, encoding=encoding)


def extract_isolated(path: str | os.PathLike, *, filename: str = "", limits: Limits | None = None,
                     progress=no_progress, encoding: str | None = None) -> Extracted:
    """extract_file in a child process killed after the time limit and held to the memory limit."""
    from workers.engine.extract.isolated import run_isolated

    return run_isolated(os.fspath(path), filename=filename, limits=limits or Limits(), progress=progress,
                        encoding=encoding)
