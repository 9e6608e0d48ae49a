"""Writes of the datasets app: making question-answer pairs from extracted documents."""
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import Chunk, Dataset, Document, QAPair
from workers.generate import extractive_pairs


def qa_generate_start(*, dataset: Dataset, max_pairs: int | None = None, parent: Job | None = None) -> Job:
    """Queue a job that makes question-answer pairs from the dataset's extracted documents."""
    if parent is None and not dataset.documents.filter(status=Document.Status.READY).exists():
        raise ValidationError("Upload a document and wait for its extraction before generating pairs.")
    return job_create(owner=dataset.owner, kind=Job.Kind.GENERATE, title=f"Generate pairs for {dataset.name}",
                      config={"dataset": dataset.pk, "max_pairs": max_pairs}, parent=parent)


def qa_generate(*, dataset: Dataset, max_pairs: int | None, reporter) -> dict:
    """Replace the dataset's generated pairs with new ones from the offline extractive generator.

    Side effects: deletes earlier generated pairs (hand-written ones stay) and creates QAPairs."""
    from workers.errors import ReadableError

    chunks = list(Chunk.objects.filter(document__dataset=dataset, document__status=Document.Status.READY)
                  .order_by("document_id", "index"))
    if not chunks:
        raise ReadableError("The dataset has no extracted text to make questions from.")
    reporter.phase("generating", f"{len(chunks)} chunks")
    pairs = []
    for position, chunk in enumerate(chunks):
        remaining = None if max_pairs is None else max_pairs - len(pairs)
        if remaining == 0:
            break
        pairs.extend((chunk, qa) for qa in extractive_pairs([chunk.text], max_pairs=remaining))
        reporter.progress((position + 1) / len(chunks), f"Chunk {position + 1} of {len(chunks)}")
    # Overlapping chunks repeat sentences: keep the first pair of each question.
    seen, unique = set(), []
    for chunk, qa in pairs:
        if qa.question.lower() not in seen:
            seen.add(qa.question.lower())
            unique.append(QAPair(dataset=dataset, chunk=chunk, question=qa.question, answer=qa.answer))
    if not unique:
        raise ReadableError("No question-answer pairs could be made: the documents have no complete sentences.")
    with transaction.atomic():
        dataset.pairs.filter(source=QAPair.Source.EXTRACTIVE).delete()
        QAPair.objects.bulk_create(unique)
    reporter.log(f"Made {len(unique)} question-answer pairs from {len(chunks)} chunks")
    return {"pairs": len(unique), "chunks": len(chunks)}


def qa_pair_delete(*, pair: QAPair) -> None:
    pair.delete()
