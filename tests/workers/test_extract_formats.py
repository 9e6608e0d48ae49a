"""Every supported format extracted from real files: the text that must come out, in order, with page offsets."""
import codecs
import json

import pytest

from tests.fixtures import documents as fx
from workers.common.errors import ReadableError
from workers.engine.extract import decode_text, detect_format, extract_file


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def page_text(extracted, page: int) -> str:
    """The text of a 1-based page, cut with the page offsets the extractor reported."""
    offsets = extracted.page_offsets + [len(extracted.text)]
    return extracted.text[offsets[page - 1]:offsets[page]]


# ---------------------------------------------------------------------------------------------- PDF


def test_it_reads_every_pdf_page_in_order_with_its_offset(tmp_path):
    extracted = extract_file(fx.text_pdf(tmp_path / "guide.pdf"))
    assert extracted.format == "pdf" and extracted.pages == 4 and len(extracted.page_offsets) == 4
    for number, text in enumerate(fx.PDF_PAGES, start=1):
        assert " ".join(page_text(extracted, number).split()) == text
    assert extracted.page_offsets[0] == 0 and extracted.page_offsets == sorted(extracted.page_offsets)


def test_it_renders_a_pdf_table_as_markdown_rows_between_the_text_around_it(tmp_path):
    extracted = extract_file(fx.text_pdf(tmp_path / "guide.pdf"))
    last = page_text(extracted, 4)
    assert extracted.tables == 1
    assert ("| River | Length | Source |\n|---|---|---|\n| Sorrel | 42 km | North ridge |\n| Amber | 17 km | Lake Ora |"
            in last)
    assert last.index(fx.PDF_TABLE_INTRO) < last.index("| River") < last.index(fx.PDF_TABLE_OUTRO)
    # Pages without lines are left to pdfium alone and hold no table markup.
    assert "|" not in extracted.text[:extracted.page_offsets[3]]


def test_it_reads_every_table_of_a_table_heavy_pdf_into_its_own_page(tmp_path):
    extracted = extract_file(fx.tables_pdf(tmp_path / "census.pdf", pages=12))
    assert extracted.pages == 12 and extracted.tables == 12
    for number in range(1, 13):
        assert page_text(extracted, number).strip() == (
            f"Census of district {number}.\n\n| District | Goats |\n|---|---|\n| D{number} | {number * 10} |")


def test_it_reads_a_pdf_protected_only_against_editing(tmp_path):
    extracted = extract_file(fx.encrypted_pdf(tmp_path / "locked.pdf", user_password=None))
    assert extracted.text == "The secret recipe uses juniper berries."


# ---------------------------------------------------------------------------------------------- DOCX


def test_it_reads_a_word_document_as_markdown_in_body_order(tmp_path):
    extracted = extract_file(fx.rich_docx(tmp_path / "guide.docx"))
    text = extracted.text
    assert extracted.format == "docx" and extracted.tables == 1
    expected_in_order = [
        fx.DOCX_HEADER,
        "# Field Guide to the Lumen Valley",
        "# Rivers",
        "The Sorrel is the longest river. Crème brûlée is served at the inn.",
        "- Spring floods\n- Summer droughts\n1. Measure the depth\n1. Record the date",
        "| River | Length | Source |\n|---|---|---|\n| Sorrel | 42 km | North ridge |\n| Amber | 17 km from Lake Ora |  |",
        "## Herding",
        "Goats move to the high pastures in June.",
        "Appendix: old maps of the valley.",
        fx.DOCX_FOOTER,
        fx.DOCX_SECOND_FOOTER,
    ]
    positions = [text.index(part) for part in expected_in_order]
    assert positions == sorted(positions)


def test_it_keeps_word_headers_and_footers_once_and_pages_at_page_breaks(tmp_path):
    extracted = extract_file(fx.rich_docx(tmp_path / "guide.docx"))
    assert extracted.text.count(fx.DOCX_HEADER) == 1 and extracted.text.count(fx.DOCX_FOOTER) == 1
    assert extracted.pages == 2
    assert page_text(extracted, 2).startswith("## Herding")
    assert "## Herding" not in page_text(extracted, 1)


# ---------------------------------------------------------------------------------------------- PPTX


def test_it_reads_slides_one_by_one_with_groups_tables_and_speaker_notes(tmp_path):
    extracted = extract_file(fx.rich_pptx(tmp_path / "talk.pptx"))
    assert extracted.format == "pptx" and extracted.pages == 3 and extracted.tables == 1
    assert page_text(extracted, 1).strip() == ("# Visiting the valley\n\nArrive by train\n  The station is in Eldhavn\n\n"
                                              "Speaker notes: Mention the Saturday market.")
    second = page_text(extracted, 2)
    assert second.startswith("# Rivers in numbers")
    assert second.index("Outer group text") < second.index("Inner group text") < second.index("| River | Length |")
    assert "| Sorrel | 42 km |\n| Amber | 17 km |" in second
    assert second.strip().endswith("Speaker notes: The Sorrel floods in spring.")
    assert page_text(extracted, 3) == "# Questions\n\nSpeaker notes: Thank the audience."


# ---------------------------------------------------------------------------------------------- text


TEXT = "Crème brûlée – naïve café\nSecond line “quoted”"


@pytest.mark.parametrize("encoding,bom", [
    ("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
    ("utf-16-le", b""), ("utf-16-be", b""), ("utf-32-le", codecs.BOM_UTF32_LE), ("utf-32-be", codecs.BOM_UTF32_BE),
    ("utf-32-le", b""), ("cp1252", b""),
])
def test_it_decodes_text_files_in_any_common_encoding(tmp_path, encoding, bom):
    extracted = extract_file(write(tmp_path, "notes.txt", bom + TEXT.encode(encoding)))
    assert extracted.text == TEXT and extracted.format == "text" and extracted.page_offsets == [0]


def test_it_keeps_markdown_as_written_apart_from_line_endings(tmp_path):
    source = "# Title\r\n\r\nA line with two trailing spaces  \r\nnext.\r\n\r\n\r\n```\r\ncode\r\n```\r\n"
    extracted = extract_file(write(tmp_path, "readme.md", source.encode()))
    assert extracted.format == "markdown" and extracted.text == source.replace("\r\n", "\n")


def test_it_tells_binary_bytes_from_text():
    assert decode_text("Grüße aus Köln".encode("utf-8")).text == "Grüße aus Köln"
    with pytest.raises(ReadableError, match="looks binary"):
        decode_text(b"\x00\x01\x02\x03 binary \x00\x00")
    with pytest.raises(ReadableError, match="looks binary"):
        decode_text(bytes(range(1, 32)) * 20)


# ---------------------------------------------------------------------------------------------- HTML


HTML = """<!DOCTYPE html><html><head><title>Head title</title><style>p { color: red }</style>
<meta charset="windows-1252"><script>var secret = "script text";</script></head>
<body><nav hidden>Hidden menu</nav><h1>The  Lumen
Valley</h1><p>First paragraph with <b>bold</b> and <a href="#">a link</a>.<br>A second line.</p>
<div style="display: none">Invisible text</div><noscript>Enable scripts</noscript>
<h2>Facts</h2><ul><li>One river</li><li>Two ridges</li></ul>
<table><tr><th>River</th><th>Length</th></tr><tr><td>Sorrel</td><td>42 km</td></tr></table>
<p>Caf\xe9 prices &amp; more</p><script>document.write("late script")</script></body></html>"""


def test_it_keeps_only_the_visible_text_of_html_with_its_structure(tmp_path):
    extracted = extract_file(write(tmp_path, "page.html", HTML.encode("cp1252")))
    assert extracted.format == "html"
    assert extracted.text == (
        "# The Lumen Valley\n\nFirst paragraph with bold and a link.\nA second line.\n\n## Facts\n\n"
        "- One river\n- Two ridges\n\n| River | Length |\n|---|---|\n| Sorrel | 42 km |\n\nCafé prices & more"
    )
    for hidden in ("Head title", "color", "script text", "Hidden menu", "Invisible", "Enable scripts", "late script"):
        assert hidden not in extracted.text


# ---------------------------------------------------------------------------------------------- data files


def test_it_imports_json_lines_that_already_are_training_data(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"What is {i}+{i}?"},
                          {"role": "assistant", "content": str(2 * i)}]} for i in range(5)]
    extracted = extract_file(write(tmp_path, "chat.jsonl", "\n".join(json.dumps(r) for r in rows).encode()))
    assert extracted.format == "jsonl" and len(extracted.examples) == 5
    assert (extracted.examples[3].system, extracted.examples[3].question, extracted.examples[3].answer) == \
        ("Be brief.", "What is 3+3?", "6")


def test_it_flattens_json_that_is_not_training_data_into_readable_text(tmp_path):
    data = {"valley": "Lumen", "rivers": [{"name": "Sorrel", "km": 42, "navigable": False}, {"name": "Amber", "km": 17}],
            "tags": ["quiet", "green"]}
    extracted = extract_file(write(tmp_path, "facts.json", json.dumps(data).encode()))
    assert extracted.format == "json" and extracted.examples is None
    assert extracted.text == ("valley: Lumen\nrivers[0].name: Sorrel\nrivers[0].km: 42\nrivers[0].navigable: no\n"
                              "rivers[1].name: Amber\nrivers[1].km: 17\ntags: quiet, green")


def test_it_reads_csv_rows_as_header_value_lines_in_cp1252(tmp_path):
    source = "Name;Dish;Price\r\nInn;Crème brûlée;4,50\r\nMarket;Goat cheese;3\r\n"
    extracted = extract_file(write(tmp_path, "menu.csv", source.encode("cp1252")))
    assert extracted.format == "csv" and extracted.examples is None
    assert extracted.text == "Name: Inn\nDish: Crème brûlée\nPrice: 4,50\n\nName: Market\nDish: Goat cheese\nPrice: 3"


def test_it_offers_csv_rows_as_training_examples(tmp_path):
    source = 'question,answer\n"Where is Eldhavn?","In the Lumen valley."\n"How long is the Sorrel?","42 km."\n'
    extracted = extract_file(write(tmp_path, "qa.csv", source.encode()))
    assert [(e.question, e.answer) for e in extracted.examples] == [
        ("Where is Eldhavn?", "In the Lumen valley."), ("How long is the Sorrel?", "42 km.")]
    assert "question: Where is Eldhavn?" in extracted.text


# ---------------------------------------------------------------------------------------------- detection


def test_it_tells_the_format_by_content_whatever_the_name(tmp_path):
    pdf = fx.text_pdf(tmp_path / "a.pdf", table=False)
    docx = fx.rich_docx(tmp_path / "b.docx")
    pptx = fx.rich_pptx(tmp_path / "c.pptx")
    cases = {
        "report.txt": (pdf.read_bytes(), "pdf"),
        "slides.pptx": (docx.read_bytes(), "docx"),
        "document.docx": (pptx.read_bytes(), "pptx"),
        "no-extension": (pdf.read_bytes(), "pdf"),
        "page": (b"<!doctype html><html><body><p>Hi</p></body></html>", "html"),
        "rows": (b'{"a": 1}\n{"a": 2}\n', "jsonl"),
        "object": (b'{"a": 1,\n "b": 2}', "json"),
        "readme": (b"# Title\n\nSome text.", "markdown"),
        "notes": (b"Just some words.", "text"),
    }
    for name, (data, expected) in cases.items():
        assert detect_format(write(tmp_path, name, data), filename=name) == expected, name
    assert extract_file(tmp_path / "report.txt").text.startswith(fx.PDF_PAGES[0])
