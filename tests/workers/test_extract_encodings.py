"""Text files as people have them: legacy code pages told apart by BOM, declaration or detection, the encoding
recorded, a user's choice honoured, and a decoding that looks wrong never silent. HTML read as browsers read
broken pages."""
import json
import re

import pytest

from tests.fixtures.encodings import SAMPLES
from workers.engine.extract import extract_file, extract_isolated
from workers.engine.extract.html import html_to_text

# Detection picks Windows-1250 for ISO-8859-2 text: the two differ only in a few letters (š, ž, ś, ą...), and
# Windows-1250 is the more common. Those words come out wrong; a user chooses ISO-8859-2 to fix them.
NEAR = {"czech"}


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def recovered(original: str, decoded: str) -> float:
    expected, got = words(original), set(words(decoded))
    return sum(1 for word in expected if word in got) / len(expected)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_it_reads_text_in_each_legacy_code_page_and_records_it(tmp_path, name):
    encoding, text = SAMPLES[name]
    path = tmp_path / f"{name}.txt"
    path.write_bytes(text.encode(encoding))
    extracted = extract_file(path)
    if name in NEAR:
        assert recovered(text, extracted.text) >= 0.9
    else:
        assert extracted.text == text
        assert extracted.warnings == []
    assert extracted.encoding  # the codec it was read with, shown on the document's page


def test_it_records_the_encoding_a_bom_or_the_bytes_tell(tmp_path):
    text = "Ångström units, naïve café"
    cases = {"bom.txt": ("\ufeff" + text).encode("utf-8"), "wide.txt": text.encode("utf-16-le"),
             "bom16.txt": text.encode("utf-16"), "plain.txt": text.encode("utf-8")}
    found = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        extracted = extract_file(tmp_path / name)
        assert extracted.text == text
        found[name] = extracted.encoding
    assert found == {"bom.txt": "utf-8-sig", "wide.txt": "utf-16-le", "bom16.txt": "utf-16", "plain.txt": "utf-8"}


def test_each_text_format_detects_the_encoding(tmp_path):
    russian = SAMPLES["russian"][1]
    (tmp_path / "rows.csv").write_bytes(f"question,answer\nО чём отчёт?,{russian[:60]}\n".encode("cp1251"))
    (tmp_path / "facts.json").write_bytes(json.dumps({"σημείωση": SAMPLES["greek"][1]}, ensure_ascii=False)
                                          .encode("cp1253"))
    (tmp_path / "notes.md").write_bytes(("# 報告\n\n" + SAMPLES["chinese-traditional"][1]).encode("big5"))
    csv = extract_file(tmp_path / "rows.csv")
    assert csv.encoding == "cp1251" and csv.examples[0].answer == russian[:60]
    facts = extract_file(tmp_path / "facts.json")
    assert facts.encoding == "cp1253" and SAMPLES["greek"][1] in facts.text
    notes = extract_file(tmp_path / "notes.md")
    assert notes.encoding == "big5" and notes.text.startswith("# 報告\n\n本公司年度報告摘要")


def test_html_uses_its_declared_charset_and_detects_when_it_lies_or_says_nothing(tmp_path):
    body = f"<h1>Отчёт</h1><p>{SAMPLES['russian-koi8'][1]}</p>"
    pages = {
        "declared.html": (f'<html><head><meta charset="koi8-r"></head><body>{body}</body></html>', "koi8-r"),
        "silent.html": (f"<html><body>{body}</body></html>", "koi8-r"),
        # The page says UTF-8 but is not: its bytes are not valid UTF-8, so detection reads them.
        "lying.html": (f'<html><head><meta charset="utf-8"></head><body>{body}</body></html>', "koi8-r"),
    }
    for name, (markup, written_in) in pages.items():
        (tmp_path / name).write_bytes(markup.encode(written_in))
        extracted = extract_file(tmp_path / name)
        assert extracted.encoding == "koi8-r", name
        assert extracted.text == f"# Отчёт\n\n{SAMPLES['russian-koi8'][1]}", name


def test_a_chosen_encoding_wins_and_a_wrong_one_says_so(tmp_path):
    encoding, text = SAMPLES["czech"]
    path = tmp_path / "zprava.txt"
    path.write_bytes(text.encode(encoding))
    chosen = extract_file(path, encoding="iso-8859-2")
    assert chosen.text == text and chosen.encoding == "iso8859-2" and chosen.warnings == []
    for wrong in ("cp1251", "utf-8"):
        extracted = extract_file(path, encoding=wrong)
        assert extracted.encoding == wrong and extracted.text != text
        assert extracted.warnings and "extract it again" in extracted.warnings[0], wrong
    # The child process the worker runs honours the choice too.
    assert extract_isolated(path, encoding="iso8859-2").text == text


def test_mojibake_inside_a_file_is_never_silent(tmp_path):
    # UTF-8 text once read as Latin-1 and saved again as UTF-8: valid UTF-8, garbled words.
    garbled = "Le café, la crème brûlée et le naïf résumé de l’été.".encode("utf-8").decode("latin-1")
    (tmp_path / "twice.txt").write_bytes(garbled.encode("utf-8"))
    extracted = extract_file(tmp_path / "twice.txt")
    assert extracted.encoding == "utf-8" and "Ã©" in extracted.text
    assert len(extracted.warnings) == 1 and "garbled" in extracted.warnings[0]
    clean = tmp_path / "clean.txt"
    clean.write_text("Le café, la crème brûlée et le naïf résumé de l’été.", encoding="utf-8")
    assert extract_file(clean).warnings == []


# ---------------------------------------------------------------------------------------------- broken HTML


BROKEN_PAGES = {
    # A stray closing tag inside <head> (the page that used to read as "contains no text").
    "stray closing tag in head": ("<html><head><title>Valley</title></div><link rel=stylesheet href=a.css></head>"
                                  "<body><h1>The Lumen valley</h1><p>Its river is the Sorrel.</p></body></html>",
                                  "# The Lumen valley\n\nIts river is the Sorrel."),
    "head never closed": ("<html><head><title>Valley</title><body><h2>Rivers</h2><p>The Sorrel runs 42 km.</p>",
                          "## Rivers\n\nThe Sorrel runs 42 km."),
    "text after the end": ("<p>Before the end.</p></body></html><p>After the end.</p>",
                           "Before the end.\n\nAfter the end."),
    "misnested tags": ("<p>One <b>bold <i>both</b> italic</i> end.</p><ul><li>first<li>second</ul>",
                       "One bold both italic end.\n\n- first\n- second"),
    "unclosed table cells": ("<table><tr><th>River<th>Length<tr><td>Sorrel<td>42 km</table><p>After.",
                             "| River | Length |\n|---|---|\n| Sorrel | 42 km |\n\nAfter."),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PAGES))
def test_broken_html_reads_as_a_browser_shows_it(tmp_path, case):
    markup, expected = BROKEN_PAGES[case]
    (tmp_path / "page.html").write_bytes(markup.encode("utf-8"))
    assert extract_file(tmp_path / "page.html").text == expected


def test_very_deep_html_still_gives_its_text():
    # Far deeper than Python's recursion limit: the walk over the tree must not recurse.
    assert html_to_text("<div>" * 10_000 + "Deep text." + "</div>" * 10_000) == "Deep text."
