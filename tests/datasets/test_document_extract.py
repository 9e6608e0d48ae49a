"""document_extract on real files: text, pages and offsets on the document; chunks with spans, pages and token
counts; training examples in data files imported as pairs that link back to their document."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from tokenizers import Tokenizer, models, pre_tokenizers

from apps.datasets.models import QAPair
from apps.datasets.jobs import document_extract
from apps.datasets.services import dataset_create, document_upload
from tests.fixtures import documents as fx
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(alice):
    return dataset_create(owner=alice, name="Valley")


def uploaded(dataset, path, name=None):
    return document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile(name or path.name, path.read_bytes()), start=False)


def test_it_stores_text_pages_and_chunks_with_their_provenance(dataset, tmp_path, settings):
    settings.GARAGE_CHUNK_TOKENS, settings.GARAGE_CHUNK_OVERLAP_TOKENS = 40, 8
    document = uploaded(dataset, fx.text_pdf(tmp_path / "guide.pdf"))
    reporter = RecordingReporter()
    result = document_extract(document=document, reporter=reporter)
    document.refresh_from_db()
    assert reporter.phases == ["extracting", "chunking"]
    assert (document.format, document.pages) == ("pdf", 4)  # the status is its job's (test_document_status)
    assert document.chars == len(document.text) and document.extract_seconds > 0
    assert len(document.page_offsets) == 4 and document.text[document.page_offsets[1]:].startswith("Goat herders")
    chunks = list(document.chunks.all())
    assert result["chunks"] == len(chunks) > 4 and result["tables"] == 1
    for chunk in chunks:
        assert document.text[chunk.char_start:chunk.char_end] == chunk.text
        assert 0 < chunk.token_count <= 40
        start_page = max(i for i, o in enumerate(document.page_offsets, 1) if o <= chunk.char_start)
        assert chunk.page == start_page and chunk.page_end >= chunk.page
    table_chunk = next(c for c in chunks if "| Sorrel | 42 km |" in c.text)
    assert table_chunk.page_end == 4


def test_it_counts_chunk_tokens_with_the_configured_tokenizer(dataset, tmp_path, settings):
    words = "the valley river goat herder . , pasture".split()
    tokenizer = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(["[UNK]", *words])}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    settings.GARAGE_CHUNK_TOKENIZER = str(tmp_path)
    settings.GARAGE_CHUNK_TOKENS, settings.GARAGE_CHUNK_OVERLAP_TOKENS = 30, 0
    path = tmp_path / "notes.txt"
    path.write_text(" ".join(["The goat herder crossed the valley river."] * 40))
    document = uploaded(dataset, path)
    document_extract(document=document, reporter=RecordingReporter())
    for chunk in document.chunks.all():
        assert chunk.token_count == len(tokenizer.encode(chunk.text).ids) <= 30


@pytest.mark.parametrize("name,fmt,pages", [("guide.docx", "docx", 2), ("talk.pptx", "pptx", 3)])
def test_it_detects_office_formats_at_upload_and_extracts_them(dataset, tmp_path, name, fmt, pages):
    path = fx.rich_docx(tmp_path / name) if fmt == "docx" else fx.rich_pptx(tmp_path / name)
    document = uploaded(dataset, path, name=f"renamed-{name}.bin".replace(".bin", ""))
    assert document.format == fmt
    document_extract(document=document, reporter=RecordingReporter())
    document.refresh_from_db()
    assert document.pages == pages and document.chunks.count() >= 1
    assert ("Speaker notes: Thank the audience." if fmt == "pptx" else fx.DOCX_FOOTER) in document.text


def test_it_imports_training_examples_as_pairs_linked_to_their_document(dataset, tmp_path):
    rows = [{"instruction": f"Name river {i}.", "input": "", "output": f"River {i} is the Sorrel."} for i in range(4)]
    path = tmp_path / "alpaca.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    document = uploaded(dataset, path)
    for _ in range(2):  # extracting again replaces the imported pairs instead of adding them twice
        result = document_extract(document=document, reporter=RecordingReporter())
    pairs = list(dataset.pairs.order_by("id"))
    assert result["imported"] == 4 and len(pairs) == 4
    assert all(p.source == QAPair.Source.IMPORTED and p.document == document and p.chunk is None for p in pairs)
    assert (pairs[2].question, pairs[2].answer) == ("Name river 2.", "River 2 is the Sorrel.")
    assert not document.chunks.exists()  # pairs already; generating questions about them would make no sense


def test_it_chunks_data_files_that_are_not_training_data(dataset, tmp_path):
    path = tmp_path / "menu.csv"
    path.write_bytes("Dish,Price\nCrème brûlée,4\nGoat cheese,3\n".encode("cp1252"))
    document = uploaded(dataset, path)
    result = document_extract(document=document, reporter=RecordingReporter())
    assert result["imported"] == 0 and result["chunks"] == 1
    assert document.chunks.get().text == "Dish: Crème brûlée\nPrice: 4\n\nDish: Goat cheese\nPrice: 3"
    assert not dataset.pairs.exists()
