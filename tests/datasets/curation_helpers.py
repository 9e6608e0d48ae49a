"""Datasets with documents, chunks, pairs and versions for the curation, version, import/export and page tests."""
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Chunk, Document, QAPair
from apps.datasets.services import dataset_create

PAGE_ONE = "The Lumen valley lies east of the copper hills. Its sky looks green at dusk.\n\n"
PAGE_TWO = "Three rivers cross the valley. The widest is the Amber river, which floods in spring.\n"


def document_with_pages(dataset, filename="field-guide.pdf"):
    """A ready two-page document with one chunk per page, as extraction leaves it."""
    text = PAGE_ONE + PAGE_TWO
    document = Document.objects.create(owner=dataset.owner, dataset=dataset, filename=filename, size=len(text),
                                       format="pdf", text=text, pages=2, chars=len(text),
                                       page_offsets=[0, len(PAGE_ONE)],
                                       file=SimpleUploadedFile(filename, text.encode()))
    Chunk.objects.create(document=document, index=0, text=PAGE_ONE.strip(), char_start=0, char_end=len(PAGE_ONE.strip()),
                         page=1, page_end=1)
    start = len(PAGE_ONE)
    Chunk.objects.create(document=document, index=1, text=PAGE_TWO.strip(), char_start=start,
                         char_end=start + len(PAGE_TWO.strip()), page=2, page_end=2)
    return document


def dataset_with_pairs(owner, name="Lumen valley", pairs=None):
    """A dataset whose pairs come from a two-page document (page 2's pairs from its second chunk)."""
    dataset = dataset_create(owner=owner, name=name, description="Answer questions about the Lumen valley.")
    document = document_with_pages(dataset)
    chunks = list(document.chunks.order_by("index"))
    pairs = pairs or [
        ("Where does the Lumen valley lie?", "East of the copper hills.", ""),
        ("What colour is the sky at dusk?", "Green.", "Answer in one word."),
        ("How many rivers cross the valley?", "Three.", ""),
        ("Which river is the widest?", "The Amber river.", ""),
    ]
    for position, (question, answer, system) in enumerate(pairs):
        chunk = chunks[0] if position < 2 else chunks[1]
        QAPair.objects.create(dataset=dataset, document=document, chunk=chunk, question=question, answer=answer,
                              system=system, source=QAPair.Source.EXTRACTIVE)
    return dataset
