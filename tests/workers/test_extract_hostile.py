"""Hostile and broken files: each one ends in a ReadableError whose message says what is wrong, in this process
and in the separate extraction process the worker uses (which also holds the time and memory limits)."""
import json

import pytest

from tests.fixtures import documents as fx
from workers.common.errors import ReadableError
from workers.engine.extract import Limits, extract_file, extract_isolated

MB = 1024 * 1024


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    folder = tmp_path_factory.mktemp("originals")
    return {"pdf": fx.text_pdf(folder / "guide.pdf"), "docx": fx.rich_docx(folder / "guide.docx"),
            "pptx": fx.rich_pptx(folder / "talk.pptx")}


def hostile_files(folder, originals) -> dict:
    """name → (path, a phrase the error message must contain)."""
    def write(name, data):
        path = folder / name
        path.write_bytes(data)
        return path

    return {
        "empty": (write("empty.txt", b""), "is empty"),
        "encrypted pdf": (fx.encrypted_pdf(folder / "locked.pdf"), "password-protected"),
        "truncated pdf": (fx.truncated(originals["pdf"], folder / "cut.pdf"), "incomplete PDF"),
        "garbage pdf": (write("garbage.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"), "could not be read as a PDF"),
        "scanned pdf": (fx.image_only_pdf(folder / "scan.pdf"), "no text layer"),
        "truncated docx": (fx.truncated(originals["docx"], folder / "cut.docx"), "damaged or incomplete"),
        "truncated pptx": (fx.truncated(originals["pptx"], folder / "cut.pptx", 0.8), "damaged or incomplete"),
        "broken docx xml": (fx.with_broken_part(originals["docx"], folder / "bad.docx", "word/document.xml"),
                            "could not be read as a Word document"),
        "broken pptx xml": (fx.with_broken_part(originals["pptx"], folder / "bad.pptx", "ppt/slides/slide1.xml"),
                            "could not be read as a PowerPoint presentation"),
        "docx zip bomb": (fx.with_extra_members(originals["docx"], folder / "bomb.docx", zeros_mb=310), "zip bomb"),
        "pptx member bomb": (fx.with_extra_members(originals["pptx"], folder / "many.pptx", count=5001), "zip bomb"),
        "protected office file": (write("secret.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)),
                                  "password-protected Office document"),
        "legacy word file": (write("report.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)),
                             "soffice --headless --convert-to docx"),
        "text named pdf": (write("notes.pdf", b"Just a few words, not a PDF."), "named like a PDF file but holds plain text"),
        "image named docx": (write("photo.docx", b"\x89PNG\r\n\x1a\n" + bytes(100)), "PNG image, which is not supported"),
        "zip named docx": (fx.zip_of(folder / "archive.docx", {"a.txt": b"hello"}), "zip archive"),
        "workbook": (fx.zip_of(folder / "sheet.docx", {"xl/workbook.xml": b"<workbook/>"}), "Excel workbook"),
        "program": (write("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200)), "not supported"),
        "binary junk": (write("data.txt", bytes(range(256)) * 8), "looks binary"),
        "broken json": (write("rows.json", b'{"a": [1, 2,, 3]}'), "not valid JSON"),
        "deep json": (write("deep.json", b"[" * 200_000 + b"]" * 200_000), "nested too deeply"),
        "broken jsonl": (write("rows.jsonl", b'{"a": 1}\n{"a": \n'), "line 2 is not valid JSON"),
        "headerless csv": (write("empty.csv", b",,\n,,\n"), "no header row"),
        "whitespace only": (write("blank.md", b" \n\n \t \n"), "contains no text"),
    }


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, originals):
    return hostile_files(tmp_path_factory.mktemp("hostile"), originals)


CASES = ["empty", "encrypted pdf", "truncated pdf", "garbage pdf", "scanned pdf", "truncated docx", "truncated pptx",
         "broken docx xml", "broken pptx xml", "docx zip bomb", "pptx member bomb", "protected office file",
         "text named pdf", "image named docx", "zip named docx", "workbook", "program", "binary junk", "broken json",
         "deep json", "broken jsonl", "headerless csv", "whitespace only"]


@pytest.mark.parametrize("case", CASES)
def test_it_rejects_each_hostile_file_with_a_readable_message(hostile, case):
    path, phrase = hostile[case]
    with pytest.raises(ReadableError) as caught:
        extract_file(path)
    message = str(caught.value)
    assert phrase in message and path.name in message
    assert "Traceback" not in message and str(path.parent) not in message


def test_it_rejects_the_same_files_in_the_separate_extraction_process(hostile):
    for case in ["encrypted pdf", "truncated docx", "broken pptx xml", "docx zip bomb", "deep json", "empty"]:
        path, phrase = hostile[case]
        with pytest.raises(ReadableError, match=phrase):
            extract_isolated(path)


def test_it_reads_the_originals_the_hostile_files_were_made_from(originals):
    for path in originals.values():
        assert extract_file(path).text


def test_it_rejects_files_over_the_size_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"word " * 300_000)
    with pytest.raises(ReadableError, match="larger than the upload limit of 1 MB"):
        extract_file(path, limits=Limits(max_bytes=MB))


def test_it_applies_the_configured_zip_limits(originals):
    with pytest.raises(ReadableError, match="more than the limit of 10"):
        extract_file(originals["docx"], limits=Limits(zip_max_members=10))
    with pytest.raises(ReadableError, match="more than the limit of 0 MB"):
        extract_file(originals["pptx"], limits=Limits(zip_max_uncompressed=1000))


def test_it_stops_at_the_time_limit_in_process_and_in_the_extraction_process(originals):
    for run in (extract_file, extract_isolated):
        with pytest.raises(ReadableError, match="took longer than the limit of 1e-06 seconds"):
            run(originals["pdf"], limits=Limits(time_limit=0.000001))


def test_it_turns_running_out_of_memory_into_a_readable_error(tmp_path):
    rows = [{"id": i, "text": "word " * 20, "tags": ["a", "b"]} for i in range(100_000)]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(ReadableError, match="memory"):
        extract_isolated(path, limits=Limits(memory_mb=120))
