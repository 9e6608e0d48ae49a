"""PDF: pypdfium2 reads every page's text (fast: hundreds of pages a second); pdfplumber looks only at the
regions of pages whose vector lines form a grid of cells with text inside, and renders the tables it finds
there as Markdown rows in the region's place.

pdfplumber is some 50 times slower than pdfium, opening even one page of a long file with it costs seconds
(pdfminer parses the whole file's structure first), and reading a page costs it some 100 µs a character. So
pdfium's geometry decides where a table may stand, and pdfplumber reads only that: a one-page PDF in memory,
copied by pdfium, that keeps the region's objects alone. Long documents are read in batches of pages shared
among processes, one per core."""
from __future__ import annotations

import bisect
import ctypes
import functools
import io
import re

from workers.common.errors import ReadableError
from workers.common.formats import Limits
from workers.engine.extract.base import (Deadline, Extracted, clean_text, damaged, join_pages, markdown_table,
                                         usable_cores)

# pdfium marks a word hyphenated at a line end with U+0002 in place of the hyphen.
_SOFT_HYPHEN_BREAK = re.compile(r"\x02\s*\n\s*")
# A complete PDF ends with %%EOF; readers accept it within the last kilobyte or so.
EOF_WINDOW = 2048

# pdfium's error codes (FPDF_GetLastError) worth telling apart.
_ERR_PASSWORD, _ERR_SECURITY = 4, 5

# The geometry of a ruled table, in PDF points (1/72 inch).
# A path thinner than this is one rule, whether stroked as a line or filled as a thin rectangle.
RULE_THICKNESS = 3.0
# Shorter segments are tick marks, arrowheads or glyph strokes, never a cell's side.
MIN_EDGE = 4.0
# Lines this close are one line: a rule's two edges, two neighbouring cells' shared side, a stroke's width.
SNAP = 2.0
# A segment whose ends differ by no more than this across its length is horizontal (or vertical).
ALIGNED = 0.5
# Reading path geometry stays cheap on pages full of drawings: paths past these counts are not read. A table's
# borders are short paths (a line, a rectangle, one path of all the rules); long ones are curves and plots.
MAX_PATHS = 2000
MAX_PATH_SEGMENTS = 256
MAX_PAGE_SEGMENTS = 2000
# pdfplumber's reading of a table needs text in two cells (_is_real_table); a table, unlike a drawing's grid
# lines with a few labels on them or a form's empty boxes, has text in most of its cells.
MIN_FILLED_CELLS = 2
MIN_FILLED_SHARE = 0.5


def _pdfium_text(text: str) -> str:
    return _SOFT_HYPHEN_BREAK.sub("", text).replace("\x02", "-")


def _table_regions(page) -> list[tuple[float, float, float, float]]:
    """The regions (x0, y0, x1, y1 in page coordinates) where the page's vector lines form a grid of cells, two
    rows and two columns at least, with text in enough of its cells: where pdfplumber may find a ruled table.
    A box around a paragraph, a page frame, header and footer rules, underlines and a chart's axes make no
    such grid, and pages without one are left to pdfium alone. `page` is pdfium's page handle (PdfPage.raw),
    as for the helpers below.

    A region reaches as far as the lines that cross it, so that a table's rows of a single cell (a title row
    above the grid, a row spanning all columns) stay in it."""
    horizontal, vertical = _ruling_lines(page)
    if len(horizontal) < 3 or len(vertical) < 3:
        return []
    horizontal, vertical = _joined(horizontal), _joined(vertical)
    grids = _grids(_cells(horizontal, vertical))
    centres = _text_centres(page) if grids else []
    regions = []
    for grid in grids:
        if not _filled(grid, centres):
            continue
        x0, y0 = min(c[0] for c in grid), min(c[1] for c in grid)
        x1, y1 = max(c[2] for c in grid), max(c[3] for c in grid)
        for y, start, end in horizontal:
            if y0 - SNAP <= y <= y1 + SNAP and start <= x1 + SNAP and end >= x0 - SNAP:
                x0, x1 = min(x0, start), max(x1, end)
        for x, start, end in vertical:
            if x0 - SNAP <= x <= x1 + SNAP and start <= y1 + SNAP and end >= y0 - SNAP:
                y0, y1 = min(y0, start), max(y1, end)
        regions.append((x0 - SNAP, y0 - SNAP, x1 + SNAP, y1 + SNAP))
    return regions


def _ruling_lines(page) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """The page's horizontal segments as (y, x0, x1) and vertical ones as (x, y0, y1), in page coordinates:
    thin paths read from their bounds, other paths from their straight segments."""
    import pypdfium2.raw as pdfium_c

    horizontal: list[tuple[float, float, float]] = []
    vertical: list[tuple[float, float, float]] = []

    def add(start: tuple[float, float], end: tuple[float, float]) -> None:
        (x0, y0), (x1, y1) = start, end
        if abs(y0 - y1) <= ALIGNED and abs(x0 - x1) >= MIN_EDGE:
            horizontal.append((y0, min(x0, x1), max(x0, x1)))
        elif abs(x0 - x1) <= ALIGNED and abs(y0 - y1) >= MIN_EDGE:
            vertical.append((x0, min(y0, y1), max(y0, y1)))

    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    x, y = ctypes.c_float(), ctypes.c_float()
    matrix = pdfium_c.FS_MATRIX()
    paths, segments_left = 0, MAX_PAGE_SEGMENTS
    for index in range(pdfium_c.FPDFPage_CountObjects(page)):
        path = pdfium_c.FPDFPage_GetObject(page, index)
        if pdfium_c.FPDFPageObj_GetType(path) != pdfium_c.FPDF_PAGEOBJ_PATH:
            continue
        paths += 1
        if paths > MAX_PATHS:
            break
        pdfium_c.FPDFPageObj_GetBounds(path, left, bottom, right, top)
        width, height = right.value - left.value, top.value - bottom.value
        if width < MIN_EDGE and height < MIN_EDGE:
            continue
        if height <= RULE_THICKNESS:
            middle = (top.value + bottom.value) / 2
            add((left.value, middle), (right.value, middle))
            continue
        if width <= RULE_THICKNESS:
            middle = (left.value + right.value) / 2
            add((middle, bottom.value), (middle, top.value))
            continue
        count = pdfium_c.FPDFPath_CountSegments(path)
        pdfium_c.FPDFPageObj_GetMatrix(path, matrix)
        # A rotated or skewed path draws no ruled table.
        if count > min(MAX_PATH_SEGMENTS, segments_left) or abs(matrix.b) > 1e-6 or abs(matrix.c) > 1e-6:
            continue
        segments_left -= count
        start = previous = None
        for number in range(count):
            segment = pdfium_c.FPDFPath_GetPathSegment(path, number)
            pdfium_c.FPDFPathSegment_GetPoint(segment, x, y)
            point = (matrix.a * x.value + matrix.e, matrix.d * y.value + matrix.f)
            kind = pdfium_c.FPDFPathSegment_GetType(segment)
            if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
                start = point
            elif kind == pdfium_c.FPDF_SEGMENT_LINETO and previous is not None:
                add(previous, point)
            if start is not None and pdfium_c.FPDFPathSegment_GetClose(segment):
                add(point, start)
            previous = point
    return horizontal, vertical


def _joined(segments: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Segments on one line (positions within SNAP) that overlap or touch, joined into lines. Lines on one
    line share its first position exactly, so counting distinct positions counts distinct lines."""
    lines: list[list[float]] = []
    line_start = 0
    for position, start, end in sorted(segments):
        if not lines or position - lines[line_start][0] > SNAP:
            line_start = len(lines)
            lines.append([position, start, end])
            continue
        for line in lines[line_start:]:
            if start <= line[2] + SNAP and end >= line[1] - SNAP:
                line[1], line[2] = min(line[1], start), max(line[2], end)
                break
        else:
            lines.append([lines[line_start][0], start, end])
    return [(position, start, end) for position, start, end in lines]


def _cells(horizontal: list[tuple[float, float, float]],
           vertical: list[tuple[float, float, float]]) -> list[tuple[float, float, float, float]]:
    """The cells (x0, y0, x1, y1) the lines enclose. From each crossing of a horizontal and a vertical line, the
    cell goes to the next crossing rightwards on that horizontal line and upwards on that vertical line, and
    is a cell when those two lines cross too. Lines come sorted by position (_joined), so each line's
    crossings are found in order."""
    crossings: set[tuple[int, int]] = set()
    across: list[list[int]] = [[] for _ in horizontal]
    upwards: list[list[int]] = [[] for _ in vertical]
    for h, (y, x0, x1) in enumerate(horizontal):
        for v, (x, y0, y1) in enumerate(vertical):
            if x0 - SNAP <= x <= x1 + SNAP and y0 - SNAP <= y <= y1 + SNAP:
                crossings.add((h, v))
                across[h].append(v)
                upwards[v].append(h)
    cells = []
    for h, row in enumerate(across):
        for v, right in zip(row, row[1:]):
            column = upwards[v]
            above = bisect.bisect_right(column, h)
            if above < len(column) and (column[above], right) in crossings and vertical[right][0] > vertical[v][0]:
                cells.append((vertical[v][0], horizontal[h][0], vertical[right][0], horizontal[column[above]][0]))
    return cells


def _grids(cells: list[tuple[float, float, float, float]]) -> list[list[tuple[float, float, float, float]]]:
    """The grids among the cells: cells that share corners, spanning two rows and two columns at least. Boxes
    side by side (one row) or stacked (one column) are no grid."""
    cells_at: dict[tuple[float, float], list[int]] = {}
    for number, (x0, y0, x1, y1) in enumerate(cells):
        for corner in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
            cells_at.setdefault(corner, []).append(number)
    grids = []
    seen: set[int] = set()
    for first in range(len(cells)):
        if first in seen:
            continue
        seen.add(first)
        group, waiting = [], [first]
        while waiting:
            x0, y0, x1, y1 = cell = cells[waiting.pop()]
            group.append(cell)
            for corner in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
                for neighbour in cells_at[corner]:
                    if neighbour not in seen:
                        seen.add(neighbour)
                        waiting.append(neighbour)
        if len({c[0] for c in group}) >= 2 and len({c[1] for c in group}) >= 2:
            grids.append(group)
    return grids


def _text_centres(page) -> list[tuple[float, float]]:
    """The centre of each text object on the page (a run of text: a word, a line, a cell's content)."""
    import pypdfium2.raw as pdfium_c

    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    centres = []
    for index in range(pdfium_c.FPDFPage_CountObjects(page)):
        text = pdfium_c.FPDFPage_GetObject(page, index)
        if pdfium_c.FPDFPageObj_GetType(text) == pdfium_c.FPDF_PAGEOBJ_TEXT:
            pdfium_c.FPDFPageObj_GetBounds(text, left, bottom, right, top)
            centres.append(((left.value + right.value) / 2, (bottom.value + top.value) / 2))
    return centres


def _filled(grid: list[tuple[float, float, float, float]], centres: list[tuple[float, float]]) -> bool:
    """Whether text stands in enough of the grid's cells for a table: in MIN_FILLED_CELLS at least, and in
    MIN_FILLED_SHARE of them (a drawing's grid lines with a few labels on them leave most cells empty)."""
    left, bottom = min(c[0] for c in grid), min(c[1] for c in grid)
    right, top = max(c[2] for c in grid), max(c[3] for c in grid)
    inside = [(x, y) for x, y in centres if left <= x <= right and bottom <= y <= top]
    filled = sum(1 for x0, y0, x1, y1 in grid if any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in inside))
    return filled >= MIN_FILLED_CELLS and filled >= MIN_FILLED_SHARE * len(grid)


def _check_complete(path: str, filename: str) -> None:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - EOF_WINDOW))
        tail = f.read()
    if b"%%EOF" not in tail:
        raise ReadableError(f"'{filename}' is an incomplete PDF: it stops before the end marker a complete file has. "
                            "Upload the whole file (the download or copy may have been cut short).")


def extract_pdf(path: str, *, filename: str, deadline: Deadline, progress=None, tables: bool = True,
                limits: Limits | None = None) -> Extracted:
    from workers.engine.extract.ocr import TEXT_PASS_SHARE, ocr_empty_pages, split_progress

    limits = limits or Limits()
    # The text pass reports into the start of the progress bar, OCR of the pages without text into the rest.
    progress, ocr_progress = split_progress(progress, TEXT_PASS_SHARE)
    _check_complete(path, filename)
    document = _open(path, filename)
    try:
        count = len(document)
    finally:
        document.close()
    pages, table_count = _read_pages(path, count, filename=filename, deadline=deadline, progress=progress,
                                     tables=tables)
    # Pages without a text layer are scans (or blank): OCR reads them.
    ocr = ocr_empty_pages(path, pages, limits=limits, deadline=deadline, progress=ocr_progress)
    text, offsets = join_pages(pages)
    if not text.strip():
        raise ReadableError(f"'{filename}' has no text layer: its pages are probably scanned images. "
                            f"{ocr.why_no_text()}")
    return Extracted(text=text, format="pdf", pages=len(pages), page_offsets=offsets, tables=table_count,
                     ocr_spans=ocr.page_spans(offsets), warnings=ocr.warnings)


def _open(path: str, filename: str):
    """The document opened by pdfium, or the ReadableError that says why it cannot be opened."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == _ERR_PASSWORD:
            raise ReadableError(f"'{filename}' is password-protected. Remove the password (or print it to a new PDF) "
                                "and upload it again.")
        if code == _ERR_SECURITY:
            raise ReadableError(f"'{filename}' uses a security handler this server cannot open. Save it without protection.")
        raise damaged(filename, "a PDF", exc)


# Below this many pages per process, starting processes costs more than it saves.
PARALLEL_MIN_PAGES = 8
MAX_WORKERS = 8
# The most pages a process reads before handing them back: small batches keep progress moving and share pages
# with tables (tens of milliseconds each in pdfplumber) evenly among the processes.
BATCH_PAGES = 16


def _read_pages(path: str, count: int, *, filename: str, deadline: Deadline, progress,
                tables: bool) -> tuple[list[str], int]:
    """Every page's cleaned text in order, tables as Markdown rows in their place, and how many tables there are.

    Batches of consecutive pages are read by a pool of processes, one per core, each with the document open
    (pdfium is not thread-safe, and one process reads one page at a time); their results come back in page
    order, so progress only moves forwards. Where no process can be started, or the pool breaks, this process
    reads the pages not read yet."""
    pages: list[str] = []
    table_count = 0

    def take(batch: list[tuple[str, int]]) -> None:
        nonlocal table_count
        for text, found in batch:
            pages.append(text)
            table_count += found
        if progress is not None:
            progress(len(pages) / count, f"Page {len(pages)} of {count}")

    read = functools.partial(_read_batch, filename=filename, deadline=deadline, tables=tables)
    workers = _workers(count)
    if workers > 1:
        import concurrent.futures

        try:
            _read_in_processes(path, count, workers, read, take)
        except (OSError, AssertionError, concurrent.futures.process.BrokenProcessPool):
            pass  # no child processes here (a daemon, or out of processes): the rest is read below
    if len(pages) < count:
        document = _open(path, filename)
        try:
            for index in range(len(pages), count):
                take(read(document, [index]))
        finally:
            document.close()
    return pages, table_count


def _workers(count: int) -> int:
    import os
    import threading

    # Forking a process that runs other threads (a worker's heartbeat) could copy a held lock into the child.
    if count < 2 * PARALLEL_MIN_PAGES or threading.active_count() > 1 or not hasattr(os, "fork"):
        return 1
    cpus = usable_cores()
    return max(1, min(cpus, count // PARALLEL_MIN_PAGES, MAX_WORKERS))


def _read_in_processes(path: str, count: int, workers: int, read, take) -> None:
    import concurrent.futures
    import multiprocessing

    size = max(1, min(BATCH_PAGES, count // (workers * 4)))
    batches = [range(start, min(start + size, count)) for start in range(0, count, size)]
    # Forked children start at once, with pdfium already loaded; each opens the document itself.
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                                  initializer=_open_in_worker, initargs=(path,))
    try:
        for batch in pool.map(functools.partial(_read_in_worker, read), batches):
            take(batch)
    finally:
        # After an error (the deadline, a damaged page) the batches not started yet are dropped.
        pool.shutdown(cancel_futures=True)


# The document a pool process reads, opened once when the process starts.
_worker_document = None


def _open_in_worker(path: str) -> None:
    import pypdfium2 as pdfium

    global _worker_document
    _worker_document = pdfium.PdfDocument(path)


def _read_in_worker(read, indexes: range) -> list[tuple[str, int]]:
    return read(_worker_document, indexes)


def _read_batch(document, indexes, *, filename: str, deadline: Deadline, tables: bool) -> list[tuple[str, int]]:
    """(cleaned text, tables found) of each page."""
    import pypdfium2 as pdfium

    read = []
    for index in indexes:
        deadline.check()
        try:
            page = document[index]
            try:
                textpage = page.get_textpage()
                try:
                    regions = _table_regions(page.raw) if tables else []
                    text, found = _text_with_tables(document, index, page, textpage, regions)
                    if not found:
                        text = _pdfium_text(textpage.get_text_range())
                finally:
                    textpage.close()
            finally:
                page.close()
        except pdfium.PdfiumError as exc:
            raise damaged(filename, "a PDF", exc)
        read.append((clean_text(text), found))
    return read


def _text_with_tables(document, index: int, page, textpage, regions) -> tuple[str, int]:
    """The page's text with the tables pdfplumber finds in the regions as Markdown rows in their places, and
    the table count; ("", 0) when it finds none. pdfium reads the text outside the regions band by band down
    the page: above a region, the region's reading, then the text beside it (a caption in the margin)."""
    import pypdfium2 as pdfium

    readings = []
    for region in regions:
        try:
            copy = _region_pdf(document, index, region)
        except pdfium.PdfiumError:
            continue  # pdfium cannot rewrite this page's content: its text stays pdfium's reading
        text, found = _tables_on_page(copy)
        if found:
            readings.append((region, text, found))
    if not readings:
        return "", 0
    left, bottom, right, top = page.get_bbox()

    def text_in(x0: float, y0: float, x1: float, y1: float) -> str:
        return _pdfium_text(textpage.get_text_bounded(x0, y0, x1, y1)) if x0 < x1 and y0 < y1 else ""

    # Regions whose heights overlap stand side by side and share one band (page coordinates grow upwards).
    bands: list[list] = []
    for region, text, _ in sorted(readings, key=lambda reading: -reading[0][3]):
        if bands and region[3] > bands[-1][0]:
            bands[-1][0] = min(bands[-1][0], region[1])
            bands[-1][2].append((region, text))
        else:
            bands.append([region[1], region[3], [(region, text)]])
    parts, cursor = [], top
    for band_bottom, band_top, members in bands:
        parts.append(text_in(left, band_top, right, cursor))
        beside, x = [], left
        for (x0, _, x1, _), text in sorted(members, key=lambda member: member[0][0]):
            parts.append(text)
            beside.append(text_in(x, band_bottom, x0, band_top))
            x = x1
        beside.append(text_in(x, band_bottom, right, band_top))
        parts += beside
        cursor = band_bottom
    parts.append(text_in(left, bottom, right, cursor))
    return "\n\n".join(part.strip() for part in parts if part.strip()), sum(reading[2] for reading in readings)


def _region_pdf(document, index: int, region: tuple[float, float, float, float]) -> io.BytesIO:
    """The page copied into a PDF of its own that keeps only the objects touching the region. pdfminer parses
    a whole file's structure before reading any page (seconds on a long document), then every object of the
    page (some 100 µs a character): this way it reads one table and what stands in it."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    x0, y0, x1, y1 = region
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    single = pdfium.PdfDocument.new()
    try:
        single.import_pages(document, [index])
        page = single[0]
        try:
            for number in reversed(range(pdfium_c.FPDFPage_CountObjects(page.raw))):
                obj = pdfium_c.FPDFPage_GetObject(page.raw, number)
                pdfium_c.FPDFPageObj_GetBounds(obj, left, bottom, right, top)
                outside = right.value < x0 or left.value > x1 or top.value < y0 or bottom.value > y1
                if outside and pdfium_c.FPDFPage_RemoveObject(page.raw, obj):
                    pdfium_c.FPDFPageObj_Destroy(obj)
            page.gen_content()
        finally:
            page.close()
        copy = io.BytesIO()
        single.save(copy)
    finally:
        single.close()
    copy.seek(0)
    return copy


def _tables_on_page(one_page: io.BytesIO) -> tuple[str, int]:
    """pdfplumber's reading of a one-page PDF: its text with each table as Markdown rows in its place, and the
    table count; ("", 0) when it finds no table."""
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError

    try:
        with pdfplumber.open(one_page) as pdf:
            return _page_with_tables(pdf.pages[0])
    except (PDFSyntaxError, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError):
        # pdfium's text stands for a region whose layout pdfminer cannot parse.
        return "", 0
    except Exception as exc:
        # pdfplumber wraps pdfminer's errors in types of its own; anything else is our bug and must show.
        if type(exc).__module__.startswith(("pdfplumber", "pdfminer")):
            return "", 0
        raise


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
