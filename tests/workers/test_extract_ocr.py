"""Text recognition (OCR) with the real tesseract: scanned PDF pages, a picture-only slide and a picture in a Word
document are read; pages with a text layer, pictures without words and pages past the limit are not; a missing
tesseract, a timeout and OCR turned off end in readable messages. The pictures are text drawn with a TrueType font."""
import io
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from workers.common.errors import ReadableError
from workers.engine.extract import Limits, extract_file, extract_isolated

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None,
                                reason="needs Debian's tesseract-ocr and tesseract-ocr-eng (.ci/run installs them)")

SCANNED_LINES = ["The juniper harvest begins in late October.", "Marmalade ferments in oak barrels for nine weeks."]
SCANNED_WORDS = ["juniper", "harvest", "October", "Marmalade", "ferments", "barrels"]
TEXT_LAYER = "The lighthouse keeper writes the tides into a ledger."


def font(size: int):
    from PIL import ImageFont

    candidates = [Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
                  *sorted(Path("/usr/share/fonts").rglob("*.ttf"))]
    for path in candidates:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    pytest.skip("needs a TrueType font under /usr/share/fonts")


def text_picture(lines: list[str], *, size=(1400, 500), mode="L", background=255):
    """A picture of dark text, like a scanned page or a screenshot."""
    from PIL import Image, ImageDraw

    picture = Image.new(mode, size, background)
    draw = ImageDraw.Draw(picture)
    for number, line in enumerate(lines):
        draw.text((60, 60 + number * 80), line, fill=0 if mode == "L" else (0, 0, 0, 255), font=font(44))
    return picture


def noise_picture(kind: str):
    """Pictures without text: grain like a photo's, and crossing lines in which tesseract finds some twenty
    "words", two of them ("AS", "ay,") confidently. Small, because tesseract spends seconds looking for letters
    in a page of noise."""
    import random

    from PIL import Image, ImageDraw

    if kind == "grain":
        return Image.effect_noise((600, 450), 90).convert("L")
    rng = random.Random(4)
    picture = Image.new("L", (1000, 700), 255)
    draw = ImageDraw.Draw(picture)
    for _ in range(200):
        draw.line([(rng.randrange(1000), rng.randrange(700)) for _ in range(2)], fill=0, width=rng.randrange(1, 6))
    return picture


def scanned_pdf(path: Path, pictures) -> Path:
    """A PDF of pictures only, one a page, as a scanner writes it (no text layer)."""
    first, *rest = pictures
    first.save(path, save_all=True, append_images=rest, resolution=150)
    return path


def mixed_pdf(path: Path, pages: list) -> Path:
    """A PDF whose pages are either text (a str, with a text layer) or a picture (scanned at 150 dpi)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for page in pages:
        pdf.add_page()
        if isinstance(page, str):
            pdf.multi_cell(0, 6, page)
        else:
            pdf.image(page, x=10, y=10, w=min(pdf.epw, page.width / 150 * 25.4))
    pdf.output(str(path))
    return path


def png(picture) -> io.BytesIO:
    stream = io.BytesIO()
    picture.save(stream, format="PNG")
    stream.seek(0)
    return stream


def ocr_text(extracted) -> str:
    return "".join(extracted.text[start:end] for start, end in extracted.ocr_spans)


def recorder():
    events = []
    return events, lambda fraction, message="": events.append((fraction, message))


# ---------------------------------------------------------------------------------------------- PDF


def test_it_reads_a_scanned_pdf_and_marks_what_ocr_read(tmp_path):
    events, progress = recorder()
    extracted = extract_file(scanned_pdf(tmp_path / "scan.pdf", [text_picture(SCANNED_LINES)] * 2), progress=progress)
    for word in SCANNED_WORDS:
        assert extracted.text.count(word) == 2, word
    # Both pages were read by OCR, and the spans cover the whole text but the blank line between them.
    assert extracted.ocr_spans == [[0, extracted.page_offsets[1] - 2], [extracted.page_offsets[1], len(extracted.text)]]
    assert extracted.warnings == []
    messages = [message for _, message in events]
    assert "Reading page 1 of 2 by OCR" in messages and "Reading page 2 of 2 by OCR" in messages
    fractions = [fraction for fraction, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_it_reads_only_the_pages_without_a_text_layer(tmp_path):
    events, progress = recorder()
    extracted = extract_file(mixed_pdf(tmp_path / "mixed.pdf", [TEXT_LAYER, text_picture(SCANNED_LINES)]),
                             progress=progress)
    assert extracted.text.startswith(TEXT_LAYER)
    assert extracted.ocr_spans == [[extracted.page_offsets[1], len(extracted.text)]]
    assert all(word in ocr_text(extracted) for word in SCANNED_WORDS)
    assert [message for _, message in events if "OCR" in message][0] == "Reading page 2 of 2 by OCR"
    # A PDF whose pages all have text never starts tesseract.
    events, progress = recorder()
    extracted = extract_file(mixed_pdf(tmp_path / "text.pdf", [TEXT_LAYER]), progress=progress)
    assert extracted.ocr_spans == [] and not any("OCR" in message for _, message in events)


def test_it_leaves_pages_past_the_limit_out_with_a_warning(tmp_path):
    pages = [text_picture([f"Chapter {name} opens with a storm."]) for name in ("Amber", "Birch", "Cedar")]
    extracted = extract_file(scanned_pdf(tmp_path / "long.pdf", pages), limits=Limits(ocr_max_pages=2))
    assert "Amber" in extracted.text and "Birch" in extracted.text and "Cedar" not in extracted.text
    assert extracted.pages == 3 and len(extracted.ocr_spans) == 2
    assert extracted.warnings == ["OCR read the first 2 of 3 scanned pages and left out the rest "
                                  "(the limit is GARAGE_OCR_MAX_PAGES=2)."]


def test_it_says_why_a_scan_has_no_text_when_ocr_is_off(tmp_path):
    path = scanned_pdf(tmp_path / "scan.pdf", [text_picture(SCANNED_LINES)])
    with pytest.raises(ReadableError) as error:
        extract_file(path, limits=Limits(ocr=False))
    assert "'scan.pdf' has no text layer" in str(error.value)
    assert "Text recognition (OCR) is turned off on this server (GARAGE_OCR)" in str(error.value)


def test_pictures_without_words_add_no_text(tmp_path):
    pages = [TEXT_LAYER, noise_picture("grain"), noise_picture("lines")]
    extracted = extract_file(mixed_pdf(tmp_path / "photos.pdf", pages))
    assert extracted.text == TEXT_LAYER and extracted.ocr_spans == [] and extracted.warnings == []
    with pytest.raises(ReadableError, match="no text layer.*OCR.* found no readable text"):
        extract_file(scanned_pdf(tmp_path / "grain.pdf", [noise_picture("grain")]))


def test_a_page_that_takes_too_long_is_left_out_readably(tmp_path):
    limits = Limits(ocr_page_seconds=0.01)
    with pytest.raises(ReadableError) as error:
        extract_file(scanned_pdf(tmp_path / "slow.pdf", [text_picture(SCANNED_LINES)]), limits=limits)
    assert "no text layer" in str(error.value)
    assert "OCR took longer than 0.01 seconds on 1 of the scanned pages" in str(error.value)
    assert "GARAGE_OCR_PAGE_TIMEOUT" in str(error.value)
    # With text elsewhere, the document is kept and the slow page is a warning.
    extracted = extract_file(mixed_pdf(tmp_path / "mixed.pdf", [TEXT_LAYER, text_picture(SCANNED_LINES)]),
                             limits=limits)
    assert extracted.text == TEXT_LAYER and "GARAGE_OCR_PAGE_TIMEOUT" in extracted.warnings[0]


def test_ocr_stops_in_time_and_says_what_it_left_out(tmp_path):
    from workers.engine.extract.base import Deadline
    from workers.engine.extract.ocr import ocr_empty_pages

    path = scanned_pdf(tmp_path / "scan.pdf", [text_picture(SCANNED_LINES)] * 3)
    pages = ["", "", ""]
    # 50 ms left of the document's time: too little for tesseract to read a page (it is stopped), and then none.
    ocr = ocr_empty_pages(str(path), pages, limits=Limits(), deadline=Deadline(0.05))
    assert pages == ["", "", ""]
    assert ocr.warnings[0].startswith("OCR ran out of time and left out 3 of the scanned pages")


def test_without_tesseract_it_names_the_package_to_install(tmp_path, monkeypatch):
    scan = scanned_pdf(tmp_path / "scan.pdf", [text_picture(SCANNED_LINES)])
    mixed = mixed_pdf(tmp_path / "mixed.pdf", [TEXT_LAYER, text_picture(SCANNED_LINES)])
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without tesseract
    with pytest.raises(ReadableError, match="needs the tesseract-ocr package"):
        extract_file(scan)
    extracted = extract_file(mixed)
    assert extracted.text == TEXT_LAYER and "apt-get install tesseract-ocr" in extracted.warnings[0]


def test_a_language_without_its_data_names_its_package(tmp_path):
    with pytest.raises(ReadableError, match="install the package tesseract-ocr-xyz"):
        extract_file(scanned_pdf(tmp_path / "scan.pdf", [text_picture(SCANNED_LINES)]),
                     limits=Limits(ocr_languages="eng+xyz"))


def test_it_reads_scans_in_the_isolated_process_under_its_memory_limit(tmp_path):
    events, progress = recorder()
    limits = Limits()
    assert limits.memory_mb == 3072  # the default address-space limit, which tesseract inherits
    extracted = extract_isolated(scanned_pdf(tmp_path / "scan.pdf", [text_picture(SCANNED_LINES)] * 2),
                                 limits=limits, progress=progress)
    assert all(word in extracted.text for word in SCANNED_WORDS) and len(extracted.ocr_spans) == 2
    assert any(message.endswith("by OCR") for _, message in events)


# ---------------------------------------------------------------------------------------------- DOCX, PPTX


def test_it_reads_a_picture_only_slide(tmp_path):
    import pptx
    from pptx.util import Inches

    presentation = pptx.Presentation()
    titled = presentation.slides.add_slide(presentation.slide_layouts[5])
    titled.shapes.title.text = "Harvest calendar"
    blank = presentation.slides.add_slide(presentation.slide_layouts[6])
    # A transparent screenshot: its clear background must not turn black and hide the dark text.
    blank.shapes.add_picture(png(text_picture(SCANNED_LINES, mode="RGBA", background=(0, 0, 0, 0))),
                             Inches(0.5), Inches(1), width=Inches(9))
    icon = presentation.slides.add_slide(presentation.slide_layouts[6])
    icon.shapes.add_picture(png(text_picture(["OK"], size=(48, 48))), Inches(1), Inches(1))
    presentation.save(tmp_path / "talk.pptx")

    events, progress = recorder()
    extracted = extract_file(tmp_path / "talk.pptx", progress=progress)
    assert extracted.text.startswith("# Harvest calendar\n\n")
    assert all(word in ocr_text(extracted) for word in SCANNED_WORDS)
    assert extracted.ocr_spans[0][0] == extracted.page_offsets[1]
    # The title slide has no picture and the icon is too small to hold text: only slide 2 is read.
    assert [message for _, message in events if "OCR" in message] == ["Reading slide 2 of 3 by OCR"]


def test_it_reads_the_text_in_a_word_documents_picture_where_it_stands(tmp_path):
    import docx
    from docx.shared import Inches

    document = docx.Document()
    document.add_paragraph("Before the figure.")
    document.add_picture(png(text_picture(SCANNED_LINES)), width=Inches(6))
    document.add_picture(png(noise_picture("lines")), width=Inches(6))
    document.add_paragraph("After the figure.")
    document.save(tmp_path / "report.docx")

    extracted = extract_file(tmp_path / "report.docx")
    read = ocr_text(extracted)
    assert all(word in read for word in SCANNED_WORDS) and "figure" not in read
    assert extracted.text.startswith("Before the figure.\n\n") and extracted.text.endswith("\n\nAfter the figure.")
    assert len(extracted.ocr_spans) == 1  # the picture of lines adds nothing


def test_a_picture_declaring_gigapixels_is_not_decoded(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("The report has one figure.")
    document.add_picture(io.BytesIO(png_declaring(100_000, 100_000)))
    document.save(tmp_path / "bomb.docx")
    extracted = extract_file(tmp_path / "bomb.docx")
    assert extracted.text == "The report has one figure." and extracted.ocr_spans == []


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header declares width × height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1) * 4))
            + chunk(b"IEND", b""))
