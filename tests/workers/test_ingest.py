import codecs

import pytest

from workers.errors import ReadableError
from workers.ingest import chunk_text, decode_text, extract_text


@pytest.mark.parametrize("encoding,bom", [("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE),
                                          ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-32-le", codecs.BOM_UTF32_LE)])
def test_it_decodes_unicode_with_or_without_bom(encoding, bom):
    assert decode_text(bom + "Crème brûlée – naïve".encode(encoding)) == "Crème brûlée – naïve"


def test_it_falls_back_to_cp1252():
    assert decode_text("café “quoted”".encode("cp1252")) == "café “quoted”"


def test_it_rejects_binary_empty_and_unsupported_files(tmp_path):
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    empty = tmp_path / "empty.md"
    empty.write_text("  \n\n ")
    other = tmp_path / "slides.pptx"
    other.write_bytes(b"PK")
    for path, message in [(binary, "binary"), (empty, "no text"), (other, "not supported")]:
        with pytest.raises(ReadableError, match=message):
            extract_text(path)


def test_it_chunks_at_paragraphs_with_overlap_and_exact_spans():
    paragraphs = [f"Paragraph {i} " + "word " * 40 for i in range(12)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = chunk_text(text, size=600, overlap=100)
    assert len(chunks) > 2
    for chunk in chunks:
        assert len(chunk.text) <= 600
        assert text[chunk.char_start:chunk.char_end] == chunk.text
    for before, after in zip(chunks, chunks[1:]):
        assert after.char_start < before.char_end  # overlap
        assert after.char_start > before.char_start
    assert chunks[-1].char_end == len(text)


def test_it_cuts_an_endless_sentence():
    chunks = chunk_text("x" * 5000, size=1000, overlap=100)
    assert all(len(c.text) <= 1000 for c in chunks) and chunks[-1].char_end == 5000
