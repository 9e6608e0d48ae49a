import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from apps.datasets.models import Chunk, Dataset, DatasetVersion, Document, QAPair, VersionExample
from workers.common.records import Example


def dataset_list_for_user(*, user) -> QuerySet[Dataset]:
    return Dataset.objects.filter(owner=user).annotate(
        document_count=Count("documents", distinct=True),
        pair_count=Count("pairs", filter=Q(pairs__excluded=""), distinct=True),
    ).order_by("-created_at")


def dataset_get_for_user(*, user, code) -> Dataset:
    """The user's dataset; 404 for anyone else."""
    try:
        return Dataset.objects.get(owner=user, code=code)
    except (Dataset.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such dataset.")


def document_get_for_user(*, user, code) -> Document:
    try:
        return Document.objects.select_related("dataset", "job").get(owner=user, code=code)
    except (Document.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such document.")


def qa_pairs_for_dataset(*, dataset, search: str = "", set_aside: bool = False) -> QuerySet[QAPair]:
    """The dataset's pairs in order (those curation set aside when `set_aside`), optionally only those whose
    question, answer or system prompt contains `search` (case-insensitive)."""
    pairs = dataset.pairs.set_aside() if set_aside else dataset.pairs.included()
    search = (search or "").strip()
    if search:
        pairs = pairs.filter(Q(question__icontains=search) | Q(answer__icontains=search) | Q(system__icontains=search))
    return pairs.select_related("chunk__document", "document").order_by("id")


def qa_pair_get_for_user(*, user, dataset, pk) -> QAPair:
    """A pair of the user's dataset; 404 for anyone else and for a pair of another dataset."""
    try:
        return QAPair.objects.select_related("chunk__document", "document", "dataset").get(
            pk=pk, dataset=dataset, dataset__owner=user)
    except (QAPair.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such pair.")


def qa_pairs_by_hand(*, dataset) -> QuerySet[QAPair]:
    """Pairs written or edited by hand: generating pairs again keeps them."""
    return dataset.pairs.filter(Q(source=QAPair.Source.MANUAL) | Q(edited=True))


def dataset_pair_counts(*, dataset) -> dict:
    """How many pairs are in the dataset, set aside by curation, written or edited by hand (kept when the pairs are
    generated again), and made by a generator and left untouched (replaced when the pairs are generated again)."""
    return dataset.pairs.aggregate(included=Count("id", filter=Q(excluded="")), set_aside=Count("id", filter=~Q(excluded="")),
                                   by_hand=Count("id", filter=Q(source=QAPair.Source.MANUAL) | Q(edited=True)),
                                   generated=Count("id", filter=Q(source__in=QAPair.GENERATED, edited=False)))


def dataset_versions(*, dataset) -> QuerySet[DatasetVersion]:
    return dataset.versions.annotate(finetune_count=Count("finetunes")).order_by("-number")


def dataset_version_list_for_user(*, user, dataset_code=None) -> QuerySet[DatasetVersion]:
    """The user's versions, newest first; only one dataset's when `dataset_code` is given (none for a code that
    is not a UUID: a filter value from a query string, not a lookup that could fail)."""
    versions = DatasetVersion.objects.filter(owner=user).select_related("dataset")
    if dataset_code:
        try:
            dataset_code = uuid.UUID(str(dataset_code))
        except ValueError:
            return versions.none()
        versions = versions.filter(dataset__code=dataset_code)
    return versions.order_by("-created_at", "-number")


def dataset_version_get_for_user(*, user, code) -> DatasetVersion:
    """The user's dataset version; 404 for anyone else."""
    try:
        return DatasetVersion.objects.select_related("dataset").get(owner=user, code=code)
    except (DatasetVersion.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such dataset version.")


def dataset_version_by_number(*, dataset, number) -> DatasetVersion:
    try:
        return dataset.versions.select_related("dataset").get(number=int(number))
    except (DatasetVersion.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404(f"This dataset has no version {number}.")


def version_examples(*, version, search: str = "") -> QuerySet[VersionExample]:
    examples = version.examples.select_related("version", "document", "chunk")
    search = (search or "").strip()
    if search:
        examples = examples.filter(Q(question__icontains=search) | Q(answer__icontains=search) | Q(system__icontains=search))
    return examples.order_by("position")


def export_examples(*, dataset=None, version=None) -> Iterator[Example]:
    """The examples to export: a frozen version's, or the dataset's current pairs; streamed from the database."""
    rows = (version.examples.order_by("position") if version is not None else dataset.pairs.included().order_by("id"))
    for system, question, answer in rows.values_list("system", "question", "answer").iterator(chunk_size=2000):
        yield Example(system=system, question=question, answer=answer)


def export_filename(*, dataset, style: str, version=None) -> str:
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset.name.lower()).strip("-")[:60] or "dataset"
    suffix = f"-v{version.number}" if version is not None else ""
    return f"{slug}{suffix}-{style}.jsonl"


@dataclass
class Excerpt:
    """A window of a document's text for display, split around a highlighted span."""

    before: str
    marked: str
    after: str
    start: int
    end: int
    first_page: int
    last_page: int
    truncated_before: bool
    truncated_after: bool


def page_of_offset(document, offset: int) -> int:
    """The 1-based page or slide holding a character offset of the document's text."""
    page = 1
    for number, start in enumerate(document.page_offsets or [], start=1):
        if start <= offset:
            page = number
        else:
            break
    return page


def page_span(document, page: int) -> tuple[int, int]:
    """Character span [start, end) of a 1-based page; the whole text when pages are not known."""
    offsets = document.page_offsets or []
    if not offsets or page < 1 or page > len(offsets):
        return 0, len(document.text)
    end = offsets[page] if page < len(offsets) else len(document.text)
    return offsets[page - 1], end


EXCERPT_CONTEXT = 3000
EXCERPT_MAX = 20_000


def document_excerpt(*, document, chunk: Chunk | None = None, page: int | None = None) -> Excerpt | None:
    """What the document page shows: the chunk marked inside its page(s), or one page, within a bounded window
    (a document may be megabytes of text)."""
    text = document.text or ""
    if not text:
        return None
    if chunk is not None:
        start, end = min(chunk.char_start, len(text)), min(chunk.char_end, len(text))
        page_start, _ = page_span(document, chunk.page)
        _, page_end = page_span(document, chunk.page_end)
        window_start = max(page_start, start - EXCERPT_CONTEXT) if page_start <= start else max(0, start - EXCERPT_CONTEXT)
        window_end = min(page_end, end + EXCERPT_CONTEXT) if page_end >= end else min(len(text), end + EXCERPT_CONTEXT)
    else:
        page = page or 1
        window_start, window_end = page_span(document, page)
        window_end = min(window_end, window_start + EXCERPT_MAX)
        start = end = window_start
    return Excerpt(before=text[window_start:start], marked=text[start:end], after=text[end:window_end],
                   start=start, end=end, first_page=page_of_offset(document, window_start),
                   last_page=page_of_offset(document, max(window_start, window_end - 1)),
                   truncated_before=window_start > 0, truncated_after=window_end < len(text))
