"""PDF: pypdfium2 reads every page's text (fast: hundreds of pages a second); pdfplumber looks only at pages
that draw enough lines to hold a ruled table, and renders the tables it finds there as Markdown rows.

pdfplumber is some 50 times slower than pdfium, so running it on every page would make a long report take
minutes; a page without vector lines cannot hold a ruled table, and counting a page's path objects costs
almost nothing."""
from __future__ import annotations

import re

from workers.common.errors import ReadableError
from workers.engine.extract.base import Deadline, Extracted, clean_text, damaged, join_pages, markdown_table

# A page with at least this many path objects (lines, rectangles) may hold a ruled table.
MIN_TABLE_PATHS = 3
# pdfium marks a word hyphenated at a line end with U+0002 in place of the hyphen.
_SOFT_HYPHEN_BREAK = re.compile(r"\x02\s*\n\s*")
# A complete PDF ends with %%EOF; readers accept it within the last kilobyte or so.
EOF_WINDOW = 2048

# pdfium's error codes (FPDF_GetLastError) worth telling apart.
_ERR_PASSWORD, _ERR_SECURITY = 4, 5


def _page_text(textpage) -> str:
    text = textpage.get_text_range()
    return _SOFT_HYPHEN_BREAK.sub("", text).replace("\x02", "-")


def _path_count(page, limit: int) -> int:
    """How many path objects the page draws, counting no further than `limit`."""
    import pypdfium2.raw as pdfium_c

    count = 0
    for index in range(pdfium_c.FPDFPage_CountObjects(page)):
        if pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(page, index)) == pdfium_c.FPDF_PAGEOBJ_PATH:
            count += 1
            if count >= limit:
                break
    return count


def _check_complete(path: str, filename: str) -> None:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - EOF_WINDOW))
        tail = f.read()
    if b"%%EOF" not in tail:
        raise ReadableError(f"'{filename}' is an incomplete PDF: it stops before the end marker a complete file has. "
                            "Upload the whole file (the download or copy may have been cut short).")


def extract_pdf(path: str, *, filename: str, deadline: Deadline, progress=None, tables: bool = True) -> Extracted:
    import pypdfium2 as pdfium

    _check_complete(path, filename)
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == _ERR_PASSWORD:
            raise ReadableError(f"'{filename}' is password-protected. Remove the password (or print it to a new PDF) "
                                "and upload it again.")
        if code == _ERR_SECURITY:
            raise ReadableError(f"'{filename}' uses a security handler this server cannot open. Save it without protection.")
        raise damaged(filename, "a PDF", exc)
    pages: list[str] = []
    candidates: list[int] = []
    try:
        count = len(document)
        for index in range(count):
            deadline.check()
            page = document[index]
            try:
                textpage = page.get_textpage()
                pages.append(clean_text(_page_text(textpage)))
                textpage.close()
                if tables and _path_count(page, MIN_TABLE_PATHS) >= MIN_TABLE_PATHS:
                    candidates.append(index)
            finally:
                page.close()
            if progress is not None:
                progress((index + 1) / count, f"Page {index + 1} of {count}")
    except pdfium.PdfiumError as exc:
        raise damaged(filename, "a PDF", exc)
    finally:
        document.close()
    table_count = 0
    if candidates:
        table_count = _tables_into(pages, candidates, path=path, filename=filename, deadline=deadline)
    text, offsets = join_pages(pages)
    if not text.strip():
        raise ReadableError(f"'{filename}' has no text layer: its pages are probably scanned images. "
                            "Text recognition (OCR) is not supported; upload a PDF with selectable text.")
    return Extracted(text=text, format="pdf", pages=len(pages), page_offsets=offsets, tables=table_count)


def _tables_into(pages: list[str], candidates: list[int], *, path: str, filename: str, deadline: Deadline) -> int:
    """Replace the text of candidate pages that do hold tables by pdfplumber's reading: the text around the
    tables as lines, each table as Markdown rows in its place. Returns how many tables were found.

    pdfplumber spends some 50 ms parsing each page, so many candidate pages are shared among processes."""
    workers = _table_workers(len(candidates))
    results = None
    if workers > 1:
        import concurrent.futures
        import multiprocessing

        groups = [candidates[i::workers] for i in range(workers)]
        try:
            # The children use only pdfplumber, never the pdfium state they inherit from this process.
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                results = list(pool.map(_render_table_pages, [path] * workers, groups, [deadline] * workers))
        except (OSError, AssertionError, concurrent.futures.process.BrokenProcessPool):
            results = None  # no child processes here (a daemon, or out of processes): read them in this one
    if results is None:
        results = [_render_table_pages(path, candidates, deadline)]
    found = 0
    for rendered in results:
        for index, (text, tables) in rendered.items():
            pages[index] = clean_text(text)
            found += tables
    return found


# Below this many candidate pages, starting processes costs more than it saves.
PARALLEL_MIN_PAGES = 8


def _table_workers(candidates: int) -> int:
    import os
    import threading

    # Forking a process that runs other threads (a worker's heartbeat) could copy a held lock into the child.
    if candidates < PARALLEL_MIN_PAGES or threading.active_count() > 1 or not hasattr(os, "fork"):
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, candidates // (PARALLEL_MIN_PAGES // 2), 8))


def _render_table_pages(path: str, indexes: list[int], deadline: Deadline) -> dict[int, tuple[str, int]]:
    """{page index: (text with Markdown tables, table count)} for the pages that hold tables."""
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError

    rendered: dict[int, tuple[str, int]] = {}
    try:
        # Opening only the candidate pages spares pdfplumber from building every page of a long document.
        with pdfplumber.open(path, pages=[index + 1 for index in indexes]) as pdf:
            for index, page in zip(indexes, pdf.pages):
                deadline.check()
                try:
                    text, tables = _page_with_tables(page)
                finally:
                    page.close()
                if tables:
                    rendered[index] = (text, tables)
    except ReadableError:
        raise
    except (PDFSyntaxError, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError):
        # pdfium read the text already; pages whose layout pdfminer cannot parse keep that text.
        return rendered
    except Exception as exc:
        # pdfplumber wraps pdfminer's errors in types of its own; anything else is our bug and must show.
        if type(exc).__module__.startswith(("pdfplumber", "pdfminer")):
            return rendered
        raise
    return rendered


def _page_with_tables(page) -> tuple[str, int]:
    tables = [(t.bbox, rows) for t in page.find_tables() if _is_real_table(rows := t.extract())]
    if not tables:
        return "", 0
    tables.sort(key=lambda t: t[0][1])
    boxes = [bbox for bbox, _ in tables]

    def outside_tables(obj) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

    def band(top: float, bottom: float) -> str:
        def inside(obj) -> bool:
            if obj.get("object_type") != "char":
                return True
            y = (obj["top"] + obj["bottom"]) / 2
            return top <= y < bottom and outside_tables(obj)

        return (page.filter(inside).extract_text() or "").strip()

    parts = []
    cursor = 0.0
    for (x0, top, x1, bottom), rows in tables:
        parts.append(band(cursor, top))
        parts.append(markdown_table(rows))
        # Text beside the table (a caption in the margin) follows it.
        parts.append(band(top, bottom))
        cursor = max(cursor, bottom)
    parts.append(band(cursor, float(page.height) + 1))
    return "\n\n".join(p for p in parts if p), len(tables)


def _is_real_table(rows: list[list]) -> bool:
    """A grid of at least two rows and two columns with text in at least two cells (a chart's grid lines or a
    box around a paragraph are not tables)."""
    if len(rows) < 2 or max((len(r) for r in rows), default=0) < 2:
        return False
    return sum(1 for row in rows for cell in row if cell and cell.strip()) >= 2
