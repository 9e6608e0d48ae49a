"""PDF extraction speed: our extractor (pypdfium2 for text, pdfplumber only on pages whose lines form a table's
grid) beside pdfplumber alone, on the same long PDFs in the same run.

    .venv/bin/python bench/extract_speed.py [--pages 400] [--table-every 20] [--rounds 3] [--json out.json]
    .venv/bin/python bench/extract_speed.py --pdf manual.pdf report.pdf ... [--plumber-budget 60] [--strict]

Without --pdf it writes two PDFs with fpdf2 and keeps them under var/bench/ for later runs: "text", paragraphs of
prose under a heading with a page-number footer on every page; and "report", the same prose on pages that draw
what real reports draw (header and footer rules, a boxed note, a form frame with underlined fields, a chart with
axes, ticks and grid lines, a page frame, underlined words) with a ruled table on every --table-every'th page.
With --pdf it measures the files given instead (real reports).

For each file it prints pages/s of our extractor in this process (the engine; median of --rounds runs), the
same in its own time- and memory-limited process (what the worker runs, start-up included), and pdfplumber
alone (`page.extract_text()` on every page). pdfplumber alone reads some 5-20 pages a second: when a first
sample of pages says the whole file would take longer than --plumber-budget seconds, it reads an evenly spread
sample of pages and extrapolates (opening time plus the sample's mean per page times the page count), and says
so. OCR of pages without text is turned off: this measures reading text and tables. Targets: ours ≥ 20×
pdfplumber alone and ≥ 300 pages/s; --strict exits 1 when one is missed. Needs no database, Redis or network."""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.engine.data.chunking import chunk_text  # noqa: E402
from workers.engine.extract import Limits, extract_file, extract_isolated  # noqa: E402

TARGET_RATIO = 20.0
TARGET_PAGES_PER_S = 300.0
WORDS = ("valley river goat herder cheese market ridge snow pasture lantern bridge mill harvest stone winter spring "
         "summer flock wool trail village inn bell tower meadow orchard frost shepherd path chapel well fence").split()


def build_text_pdf(path: Path, pages: int, seed: int = 7) -> Path:
    """A text PDF like a long report: ~2,250 characters of prose per page in paragraphs, under a heading."""
    from fpdf import FPDF

    class Report(FPDF):
        def footer(self):
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            self.cell(0, 8, f"Lumen Valley survey - page {self.page_no()}", align="C")

    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."

    pdf = Report()
    pdf.set_auto_page_break(False)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=13)
        pdf.cell(0, 8, f"Section {number}: the {rng.choice(WORDS)} and the {rng.choice(WORDS)}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        for _ in range(6):
            pdf.multi_cell(0, 5, " ".join(sentence() for _ in range(4)), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def build_report_pdf(path: Path, pages: int, table_every: int, seed: int = 11) -> Path:
    """A long report whose pages draw lines as real reports do, without being tables: a rule under the running
    header and above the footer on every page, and in turn a boxed note, a form frame (a titled box with
    underlined fields), a chart (axes, tick marks, horizontal grid lines, a data line, labels), a frame around
    the page beside a side rule; underlined words here and there; and a ruled table every `table_every` pages."""
    from fpdf import FPDF

    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."

    class Report(FPDF):
        def header(self):
            self.set_font("Helvetica", size=8)
            self.cell(0, 6, "Lumen Valley Trust - annual survey", new_x="LMARGIN", new_y="NEXT")
            self.line(10, 17, 200, 17)
            self.set_y(20)

        def footer(self):
            self.line(10, 283, 200, 283)
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            self.cell(0, 8, f"page {self.page_no()}", align="C")

    def prose(paragraphs: int) -> None:
        pdf.set_font("Helvetica", size=10)
        for _ in range(paragraphs):
            pdf.multi_cell(0, 5, " ".join(sentence() for _ in range(3)), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)

    def boxed_note() -> None:
        pdf.set_font("Helvetica", style="I", size=10)
        pdf.multi_cell(0, 5, "Note: " + " ".join(sentence() for _ in range(3)), border=1, padding=2,
                       new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)

    def form_frame() -> None:
        top = pdf.get_y()
        pdf.rect(10, top, 190, 48)
        pdf.line(10, top + 8, 200, top + 8)
        pdf.set_font("Helvetica", style="B", size=10)
        pdf.text(13, top + 6, "Field visit record")
        pdf.set_font("Helvetica", size=9)
        for row, label in enumerate(["Herder", "Pasture", "Flock size", "Date"]):
            y = top + 17 + row * 9
            pdf.text(14, y, f"{label}:")
            pdf.line(45, y + 1, 190, y + 1)
            pdf.text(47, y, f"{rng.choice(WORDS)} {rng.randint(1, 400)}")
        pdf.set_y(top + 52)

    def chart() -> None:
        top = pdf.get_y()
        left, bottom, width, height = 30, top + 55, 150, 50
        pdf.set_draw_color(200)
        for step in range(1, 5):
            pdf.line(left, bottom - step * height / 5, left + width, bottom - step * height / 5)
        pdf.set_draw_color(0)
        pdf.line(left, bottom, left + width, bottom)
        pdf.line(left, bottom, left, bottom - height)
        pdf.set_font("Helvetica", size=7)
        for step in range(11):
            x = left + step * width / 10
            pdf.line(x, bottom, x, bottom + 1.5)
            pdf.text(x - 2, bottom + 5, str(2010 + step))
        pdf.polyline([(left + step * width / 10, bottom - rng.uniform(5, height - 5)) for step in range(11)])
        pdf.text(left + 3, bottom - height + 4, f"Flock size, {rng.choice(WORDS)} ridge")
        pdf.set_y(bottom + 9)

    def framed_page() -> None:
        pdf.rect(8, 8, 194, 281)
        top = pdf.get_y()
        prose(2)
        pdf.line(12, top, 12, pdf.get_y())

    def underlined_words() -> None:
        pdf.set_font("Helvetica", size=10)
        pdf.write(5, "See also ")
        pdf.set_font("Helvetica", style="U", size=10)
        pdf.write(5, f"the {rng.choice(WORDS)} register")
        pdf.set_font("Helvetica", size=10)
        pdf.write(5, " and ")
        pdf.set_font("Helvetica", style="U", size=10)
        pdf.write(5, f"the {rng.choice(WORDS)} accounts")
        pdf.set_font("Helvetica", size=10)
        pdf.write(5, ".")
        pdf.ln(8)

    def table() -> None:
        pdf.set_font("Helvetica", size=9)
        with pdf.table(col_widths=(40, 30, 30, 60)) as grid:
            for r in range(6):
                row = grid.row()
                for c in range(4):
                    row.cell(["Site", "Height (m)", "Flock", "Notes"][c] if r == 0 else f"{rng.choice(WORDS)} {r}{c}")
        pdf.ln(3)

    pdf = Report()
    pdf.set_auto_page_break(False)
    drawings = [boxed_note, form_frame, chart, framed_page]
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=13)
        pdf.cell(0, 8, f"Section {number}: the {rng.choice(WORDS)} and the {rng.choice(WORDS)}",
                 new_x="LMARGIN", new_y="NEXT")
        prose(2)
        drawings[number % len(drawings)]()
        if table_every and number % table_every == 0:
            table()
        else:
            prose(1)
        underlined_words()
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def time_ours(path: Path, isolated: bool) -> tuple[float, object]:
    limits = Limits(max_bytes=1 << 40, time_limit=3600, ocr=False)
    started = time.perf_counter()
    run = extract_isolated if isolated else extract_file
    extracted = run(path, limits=limits)
    return time.perf_counter() - started, extracted


def time_plumber(path: Path, budget: float) -> tuple[float, int | None]:
    """Seconds pdfplumber alone takes to read every page's text, and None; or, when the first PLUMBER_SAMPLE
    pages say that would take longer than `budget` seconds, the estimate from them and their number."""
    import pdfplumber

    started = time.perf_counter()
    with pdfplumber.open(str(path)) as pdf:
        count = len(pdf.pages)
        opened = time.perf_counter() - started
        for read, index in enumerate(_spread(count), start=1):
            page = pdf.pages[index]
            page.extract_text()
            page.close()
            estimate = opened + (time.perf_counter() - started - opened) / read * count
            if read >= PLUMBER_SAMPLE and read < count and estimate > budget:
                return estimate, read
    return time.perf_counter() - started, None


# The pages pdfplumber alone reads, spread over the file, before an estimate may stand for the whole file.
PLUMBER_SAMPLE = 60


def _spread(count: int) -> list[int]:
    """Every page index, in an order whose every prefix is spread evenly over the document (first, middle,
    quarters, ...), so that a sample cut from its start stands for the whole file."""
    order, seen, step = [], set(), count
    while len(order) < count:
        for index in range(0, count, max(1, step)):
            if index not in seen:
                seen.add(index)
                order.append(index)
        step //= 2
    return order


def measure(path: Path, *, rounds: int, plumber_budget: float) -> dict:
    # One warm-up so that imports and the file cache do not count against the first timed run.
    extract_file(path, limits=Limits(max_bytes=1 << 40, time_limit=3600, ocr=False))
    ours, isolated = [], []
    for _ in range(rounds):
        seconds, extracted = time_ours(path, isolated=False)
        ours.append(seconds)
        isolated.append(time_ours(path, isolated=True)[0])
    started = time.perf_counter()
    chunks = chunk_text(extracted.text, page_offsets=extracted.page_offsets)
    chunk_s = time.perf_counter() - started
    plumber_s, sampled = time_plumber(path, plumber_budget)
    pages = extracted.pages
    ours_s, isolated_s = statistics.median(ours), statistics.median(isolated)
    offsets = extracted.page_offsets + [len(extracted.text)]
    return {
        "pdf": str(path), "pages": pages, "chars": extracted.chars, "tables": extracted.tables,
        "pages_without_text": sum(1 for start, end in zip(offsets, offsets[1:]) if not extracted.text[start:end].strip()),
        "chunks": len(chunks), "chunking_seconds": round(chunk_s, 3),
        "ours_seconds": round(ours_s, 3), "ours_pages_per_s": round(pages / ours_s, 1),
        "isolated_seconds": round(isolated_s, 3), "isolated_pages_per_s": round(pages / isolated_s, 1),
        "plumber_seconds": round(plumber_s, 3), "plumber_pages_per_s": round(pages / plumber_s, 2),
        "plumber_sampled_pages": sampled,
        "ratio": round(plumber_s / ours_s, 1), "ratio_isolated": round(plumber_s / isolated_s, 1),
        "rounds": rounds,
    }


def report(figures: dict) -> bool:
    """Print one file's figures as a Markdown table; returns whether the targets are met."""
    path = Path(figures["pdf"])
    sampled = figures["plumber_sampled_pages"]
    plumber_name = "pdfplumber alone" + (f" (extrapolated from {sampled} pages spread over the file)" if sampled else "")
    print(f"\n{path.name}: {figures['pages']} pages, {figures['chars']:,} characters, {figures['tables']} tables, "
          f"{figures['pages_without_text']} pages without text\n")
    print("| extractor | seconds | pages/s | speed-up over pdfplumber alone |\n|---|---|---|---|")
    for name, key, ratio in [("ours (engine, in process)", "ours", f"{figures['ratio']}×"),
                             ("ours (own process, as the worker runs it)", "isolated", f"{figures['ratio_isolated']}×"),
                             (plumber_name, "plumber", "1×")]:
        print(f"| {name} | {figures[key + '_seconds']:.3f} | {figures[key + '_pages_per_s']:,.1f} | {ratio} |")
    print(f"\nchunking the text into {figures['chunks']} chunks: {figures['chunking_seconds']:.3f} s")
    met = figures["ratio"] >= TARGET_RATIO and figures["ours_pages_per_s"] >= TARGET_PAGES_PER_S
    print(f"targets (≥ {TARGET_RATIO:g}× pdfplumber, ≥ {TARGET_PAGES_PER_S:g} pages/s): {'met' if met else 'MISSED'}")
    return met


def main() -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, nargs="+", help="Measure these PDFs instead of generated ones.")
    parser.add_argument("--pages", type=int, default=400, help="Pages of each generated PDF.")
    parser.add_argument("--table-every", type=int, default=20, help="A ruled table on every Nth page of the report.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of our extractor (the median is reported).")
    parser.add_argument("--plumber-budget", type=float, default=60.0,
                        help="Seconds pdfplumber alone may take on a file before it is sampled instead.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    parser.add_argument("--strict", action="store_true", help="Exit 1 when a target is missed.")
    args = parser.parse_args()
    if args.rounds < 1 or args.pages < 1 or args.table_every < 0:
        parser.error("--rounds and --pages must be at least 1, --table-every at least 0")
    for path in args.pdf or []:
        if not path.is_file():
            parser.error(f"no such file: {path}")

    paths = args.pdf
    if not paths:
        folder = ROOT / "var" / "bench"
        paths = [folder / f"extract-speed-text-{args.pages}p.pdf",
                 folder / f"extract-speed-report-{args.pages}p-t{args.table_every}.pdf"]
        for path, build in zip(paths, [lambda p: build_text_pdf(p, args.pages),
                                       lambda p: build_report_pdf(p, args.pages, args.table_every)]):
            if not path.exists():
                started = time.perf_counter()
                build(path)
                print(f"wrote {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average {os.getloadavg()[0]:.2f} at the start")
    results = [measure(path, rounds=args.rounds, plumber_budget=args.plumber_budget) for path in paths]
    met = [report(figures) for figures in results]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if args.strict and not all(met) else 0


if __name__ == "__main__":
    sys.exit(main())
