"""PDF tables: only pages whose lines form a grid of cells with text go to pdfplumber (boxes, rules, frames, a
chart's axes do not), it reads them from a one-page copy, and long documents keep every page's text in order
whether they are read by one process or by several."""
import os
import threading

import pdfplumber
import pypdfium2 as pdfium
import pytest

from tests.fixtures import documents as fx
from workers.common.errors import ReadableError
from workers.engine.extract import Limits, extract_file
from workers.engine.extract.base import Deadline
from workers.engine.extract.pdf import _page_with_tables, _read_pages, _region_pdf, _table_regions, _tables_on_page

PARAGRAPH = "The herders count their goats at the autumn market before the first snow closes the pass."


def page_text(extracted, page: int) -> str:
    offsets = extracted.page_offsets + [len(extracted.text)]
    return extracted.text[offsets[page - 1]:offsets[page]]


def candidates(path) -> list[int]:
    """The 1-based numbers of the pages whose lines may hold a table."""
    document = pdfium.PdfDocument(str(path))
    found = []
    try:
        for index in range(len(document)):
            page = document[index]
            if _table_regions(page.raw):
                found.append(index + 1)
            page.close()
    finally:
        document.close()
    return found


def new_pdf():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    return pdf


def drawings_pdf(path):
    """One page per drawing that is not a table, each with PARAGRAPH on it."""
    pdf = new_pdf()

    def paragraph(**options):
        pdf.multi_cell(0, 6, PARAGRAPH, new_x="LMARGIN", new_y="NEXT", **options)

    pdf.add_page()  # 1: a box around a paragraph
    paragraph(border=1, padding=2)
    pdf.add_page()  # 2: header and footer rules, underlined words
    pdf.line(10, 15, 200, 15)
    pdf.line(10, 283, 200, 283)
    paragraph()
    pdf.set_font("Helvetica", style="U", size=11)
    pdf.write(6, "the goat register")
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()  # 3: a frame around the page, a side rule beside the paragraph
    pdf.rect(8, 8, 194, 281)
    pdf.line(12, 10, 12, 40)
    paragraph()
    pdf.add_page()  # 4: a chart: axes, tick marks with labels, horizontal grid lines, a data line
    paragraph()
    for step in range(1, 5):
        pdf.line(30, 120 - step * 12, 180, 120 - step * 12)
    pdf.line(30, 120, 180, 120)
    pdf.line(30, 120, 30, 60)
    pdf.set_font("Helvetica", size=7)
    for step in range(11):
        pdf.line(30 + step * 15, 120, 30 + step * 15, 122)
        pdf.text(28 + step * 15, 126, str(2010 + step))
    pdf.polyline([(30 + step * 15, 115 - (step * 7) % 50) for step in range(11)])
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()  # 5: a form frame: a titled box with labelled, underlined fields
    paragraph()
    pdf.rect(10, 40, 190, 48)
    pdf.line(10, 48, 200, 48)
    pdf.text(13, 46, "Field visit record")
    for row, label in enumerate(["Herder", "Pasture", "Flock size", "Date"]):
        pdf.text(14, 57 + row * 9, f"{label}:")
        pdf.line(45, 58 + row * 9, 190, 58 + row * 9)
        pdf.text(47, 57 + row * 9, f"entry {row}")
    pdf.add_page()  # 6: boxes side by side, and boxes stacked, each with a few words
    paragraph()
    for x in (10, 75, 140):
        pdf.rect(x, 40, 60, 20)
        pdf.text(x + 3, 50, f"side {x}")
    for y in (80, 100, 120):
        pdf.rect(10, y, 60, 20)
        pdf.text(13, y + 10, f"stacked {y}")
    pdf.add_page()  # 7: an empty grid to fill in by hand (a form, no text in its cells)
    paragraph()
    for row in range(6):
        pdf.line(10, 40 + row * 10, 200, 40 + row * 10)
    for column in range(5):
        pdf.line(10 + column * 47.5, 40, 10 + column * 47.5, 90)
    pdf.output(str(path))
    return path


def draw_ruled_table(pdf, left: float, top: float, *, filled_rules: bool, width: float = 50) -> None:
    """fx.PDF_TABLE drawn cell by cell: separate rules, stroked as lines or (as LaTeX does) filled as thin
    rectangles, and the cells' texts placed inside."""
    height, lefts = 10, [left + column * width for column in range(4)]
    for row in range(4):
        y = top + row * height
        if filled_rules:
            pdf.rect(lefts[0], y, lefts[-1] - lefts[0], 0.4, style="F")
        else:
            pdf.line(lefts[0], y, lefts[-1], y)
    for x in lefts:
        if filled_rules:
            pdf.rect(x, top, 0.4, 3 * height, style="F")
        else:
            pdf.line(x, top, x, top + 3 * height)
    for row, cells in enumerate(fx.PDF_TABLE):
        for column, value in enumerate(cells):
            pdf.text(lefts[column] + 2, top + row * height + 7, value)


def ruled_table_pdf(path, *, filled_rules: bool):
    """One page with a paragraph and fx.PDF_TABLE below it."""
    pdf = new_pdf()
    pdf.add_page()
    pdf.multi_cell(0, 6, PARAGRAPH)
    draw_ruled_table(pdf, 20, 40, filled_rules=filled_rules)
    pdf.output(str(path))
    return path


TABLE_PAGES = (7, 50, 111)


def long_pdf(path, pages: int = 120):
    """A long report: every page names itself and draws a header rule and a boxed note; TABLE_PAGES also hold
    a ruled table naming their page."""
    pdf = new_pdf()
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.line(10, 15, 200, 15)
        pdf.multi_cell(0, 6, f"Page marker {number}. {PARAGRAPH}", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, f"Note {number}: keep the gate closed.", border=1, new_x="LMARGIN", new_y="NEXT")
        if number in TABLE_PAGES:
            pdf.ln(4)
            with pdf.table() as grid:
                for row in [["Page", "Goats"], [f"P{number}", str(number * 3)]]:
                    cells = grid.row()
                    for value in row:
                        cells.cell(value)
    pdf.output(str(path))
    return path


def test_boxes_rules_frames_and_charts_are_no_table_candidates_and_read_as_text(tmp_path):
    path = drawings_pdf(tmp_path / "drawings.pdf")
    assert candidates(path) == []
    extracted = extract_file(path)
    assert extracted.pages == 7 and extracted.tables == 0 and "|" not in extracted.text
    for number in range(1, 8):
        assert PARAGRAPH in " ".join(page_text(extracted, number).split())
    assert "Field visit record" in page_text(extracted, 5) and "stacked 120" in page_text(extracted, 6)


@pytest.mark.parametrize("filled_rules", [False, True], ids=["stroked rules", "filled rules"])
def test_a_table_of_separate_rules_is_a_candidate_and_comes_out_as_markdown(tmp_path, filled_rules):
    path = ruled_table_pdf(tmp_path / "rules.pdf", filled_rules=filled_rules)
    assert candidates(path) == [1]
    extracted = extract_file(path)
    assert extracted.tables == 1
    assert extracted.text.index(PARAGRAPH[:40]) < extracted.text.index(
        "| River | Length | Source |\n|---|---|---|\n| Sorrel | 42 km | North ridge |\n| Amber | 17 km | Lake Ora |")


def test_a_long_pdf_keeps_every_page_in_order_with_tables_only_where_they_are(tmp_path):
    path = long_pdf(tmp_path / "long.pdf")
    assert candidates(path) == list(TABLE_PAGES)
    heard = []
    extracted = extract_file(path, progress=lambda fraction, message="": heard.append((fraction, message)))
    assert extracted.pages == 120 and extracted.tables == len(TABLE_PAGES)
    for number in range(1, 121):
        text = page_text(extracted, number)
        assert text.startswith(f"Page marker {number}.") and f"Note {number}:" in text
        if number in TABLE_PAGES:
            assert f"| Page | Goats |\n|---|---|\n| P{number} | {number * 3} |" in text
        else:
            assert "|" not in text
    # Progress moves forwards only and names the last page.
    fractions = [fraction for fraction, _ in heard]
    assert fractions == sorted(fractions) and "Page 120 of 120" in [message for _, message in heard]


def test_one_process_reads_a_long_pdf_as_the_pool_of_processes_does(tmp_path):
    path = str(long_pdf(tmp_path / "long.pdf"))
    heard = []
    pooled = _read_pages(path, 120, filename="long.pdf", deadline=Deadline(60), progress=lambda f, m: heard.append(f),
                         tables=True)
    assert heard == sorted(heard) and heard[-1] == 1.0
    # The pool hands pages back in batches; it forks only where no other thread runs (the extraction child of a
    # worker), which is not so after the suite's live servers have started in this process.
    if len(os.sched_getaffinity(0)) > 1 and threading.active_count() == 1:
        assert len(heard) < 120
    # A running thread forbids forking (a held lock could be copied into the children): one process reads it all.
    stop = threading.Event()
    heartbeat = threading.Thread(target=stop.wait)
    heartbeat.start()
    try:
        heard_alone = []
        alone = _read_pages(path, 120, filename="long.pdf", deadline=Deadline(60),
                            progress=lambda f, m: heard_alone.append(f), tables=True)
    finally:
        stop.set()
        heartbeat.join()
    assert alone == pooled and len(heard_alone) == 120 and heard_alone[-1] == 1.0


def test_the_deadline_stops_a_long_pdf_read_by_several_processes(tmp_path):
    path = long_pdf(tmp_path / "long.pdf")
    with pytest.raises(ReadableError, match="took longer than the limit"):
        extract_file(path, limits=Limits(time_limit=0.000001))


def test_the_copy_of_a_tables_region_gives_pdfplumber_the_same_table_as_the_whole_file(tmp_path):
    path = long_pdf(tmp_path / "long.pdf")
    index = TABLE_PAGES[1] - 1
    with pdfplumber.open(str(path)) as pdf:
        whole_page, whole_page_tables = _page_with_tables(pdf.pages[index])
    document = pdfium.PdfDocument(str(path))
    try:
        page = document[index]
        [region] = _table_regions(page.raw)
        page.close()
        copy = _region_pdf(document, index, region)
    finally:
        document.close()
    table = f"| Page | Goats |\n|---|---|\n| P{index + 1} | {(index + 1) * 3} |"
    # The copy holds the table alone: the page's paragraphs are pdfium's to read.
    assert _tables_on_page(copy) == (table, 1)
    assert whole_page_tables == 1 and table in whole_page and PARAGRAPH[:30] in whole_page


def test_tables_side_by_side_each_come_out_once_with_the_text_around_them(tmp_path):
    pdf = new_pdf()
    pdf.add_page()
    pdf.multi_cell(0, 6, PARAGRAPH)
    draw_ruled_table(pdf, 10, 40, filled_rules=False, width=28)
    draw_ruled_table(pdf, 110, 40, filled_rules=True, width=28)
    pdf.text(10, 90, fx.PDF_TABLE_OUTRO)
    path = tmp_path / "pair.pdf"
    pdf.output(str(path))
    extracted = extract_file(path)
    table = "| River | Length | Source |\n|---|---|---|\n| Sorrel | 42 km | North ridge |\n| Amber | 17 km | Lake Ora |"
    assert extracted.tables == 2 and extracted.text.count(table) == 2
    assert extracted.text.index(PARAGRAPH[:40]) < extracted.text.index(table)
    assert extracted.text.rindex(table) < extracted.text.index(fx.PDF_TABLE_OUTRO)
    assert extracted.text.count("Sorrel") == 2
