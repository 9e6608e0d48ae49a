"""PDF extraction speed: our extractor (pypdfium2 for text, pdfplumber only on pages that draw table lines)
beside pdfplumber alone, on the same multi-hundred-page text PDF in the same run.

    .venv/bin/python bench/extract_speed.py [--pages 400] [--table-every 0] [--rounds 3] [--pdf FILE]
                                            [--json out.json] [--strict]

Without --pdf it writes a PDF with fpdf2 (paragraphs of prose, a heading and a page-number footer on every
page, and with --table-every N a ruled table on every Nth page) and keeps it under var/bench/ for later runs.
Prints pages/s of: our extractor in this process (the engine), the same in its own time- and memory-limited
process (what the worker runs, start-up included), chunking of the extracted text, and pdfplumber alone
(`page.extract_text()` on every page). Targets for text PDFs: ours ≥ 20× pdfplumber alone and ≥ 300 pages/s.
--strict exits 1 when a target is missed. Needs no database, Redis or network."""
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


def build_pdf(path: Path, pages: int, table_every: int, seed: int = 7) -> Path:
    """A text PDF like a long report: ~2,900 characters of prose per page in paragraphs, under a heading."""
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
        paragraphs = 4 if table_every and number % table_every == 0 else 6
        for _ in range(paragraphs):
            pdf.multi_cell(0, 5, " ".join(sentence() for _ in range(4)), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        if table_every and number % table_every == 0:
            with pdf.table(col_widths=(40, 30, 30, 60)) as table:
                for r in range(6):
                    row = table.row()
                    for c in range(4):
                        row.cell(["Site", "Height (m)", "Flock", "Notes"][c] if r == 0 else f"{rng.choice(WORDS)} {r}{c}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def time_ours(path: Path, isolated: bool) -> tuple[float, object]:
    started = time.perf_counter()
    run = extract_isolated if isolated else extract_file
    extracted = run(path, limits=Limits(max_bytes=1 << 40, time_limit=3600))
    return time.perf_counter() - started, extracted


def time_plumber(path: Path) -> tuple[float, int]:
    import pdfplumber

    started = time.perf_counter()
    chars = 0
    with pdfplumber.open(str(path)) as pdf:
        for page in pdf.pages:
            chars += len(page.extract_text() or "")
            page.close()
    return time.perf_counter() - started, chars


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--table-every", type=int, default=0, help="A ruled table on every Nth page (0: none).")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of our extractor (the median is reported).")
    parser.add_argument("--plumber-rounds", type=int, default=1, help="Runs of pdfplumber alone (slow).")
    parser.add_argument("--pdf", type=Path, help="Measure this PDF instead of a generated one.")
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    parser.add_argument("--strict", action="store_true", help="Exit 1 when a target is missed.")
    args = parser.parse_args()
    if args.rounds < 1 or args.plumber_rounds < 1:
        parser.error("--rounds and --plumber-rounds must be at least 1")

    path = args.pdf
    if path is None:
        path = ROOT / "var" / "bench" / f"extract-speed-{args.pages}p-t{args.table_every}.pdf"
        if not path.exists():
            started = time.perf_counter()
            build_pdf(path, args.pages, args.table_every)
            print(f"wrote {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    # One warm-up so that imports and the file cache do not count against the first timed run.
    extract_file(path, limits=Limits(max_bytes=1 << 40, time_limit=3600))
    ours, isolated, chunking, plumber = [], [], [], []
    extracted = None
    for round_number in range(max(args.rounds, args.plumber_rounds)):
        if round_number < args.rounds:
            seconds, extracted = time_ours(path, isolated=False)
            ours.append(seconds)
            isolated.append(time_ours(path, isolated=True)[0])
            started = time.perf_counter()
            chunks = chunk_text(extracted.text, page_offsets=extracted.page_offsets)
            chunking.append(time.perf_counter() - started)
        if round_number < args.plumber_rounds:
            seconds, plumber_chars = time_plumber(path)
            plumber.append(seconds)

    pages = extracted.pages
    ours_s, isolated_s, chunk_s, plumber_s = (statistics.median(v) for v in (ours, isolated, chunking, plumber))
    figures = {
        "pdf": str(path), "pages": pages, "chars": extracted.chars, "tables": extracted.tables, "chunks": len(chunks),
        "ours_seconds": round(ours_s, 3), "ours_pages_per_s": round(pages / ours_s, 1),
        "isolated_seconds": round(isolated_s, 3), "isolated_pages_per_s": round(pages / isolated_s, 1),
        "chunking_seconds": round(chunk_s, 3),
        "plumber_seconds": round(plumber_s, 3), "plumber_pages_per_s": round(pages / plumber_s, 2),
        "ratio": round(plumber_s / ours_s, 1), "ratio_isolated": round(plumber_s / isolated_s, 1),
        "rounds": args.rounds, "plumber_rounds": args.plumber_rounds, "plumber_chars": plumber_chars,
    }
    rows = [
        ("ours (engine, in process)", ours_s, f"{figures['ratio']}×"),
        ("ours (own process, as the worker runs it)", isolated_s, f"{figures['ratio_isolated']}×"),
        ("pdfplumber alone", plumber_s, "1×"),
    ]
    print(f"\n{path.name}: {pages} pages, {extracted.chars:,} characters, {extracted.tables} tables\n")
    print("| extractor | seconds | pages/s | speed-up over pdfplumber |\n|---|---|---|---|")
    for name, seconds, ratio in rows:
        print(f"| {name} | {seconds:.3f} | {pages / seconds:,.1f} | {ratio} |")
    print(f"\nchunking the text into {len(chunks)} chunks of 300 tokens: {chunk_s:.3f} s "
          f"({chunk_s / ours_s:.0%} of the extraction time)")
    met = figures["ratio"] >= TARGET_RATIO and figures["ours_pages_per_s"] >= TARGET_PAGES_PER_S
    print(f"targets (≥ {TARGET_RATIO:g}× pdfplumber, ≥ {TARGET_PAGES_PER_S:g} pages/s): {'met' if met else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
