"""Writes of the datasets app: datasets, document uploads and their extraction."""
import re
import shutil
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import Chunk, Dataset, Document
from workers.ingest import TEXT_SUFFIXES, chunk_text, extract_text

CHUNK_SIZE = 1200
CHUNK_OVERLAP = 150


def dataset_create(*, owner, name: str, description: str = "") -> Dataset:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the dataset a name.")
    return Dataset.objects.create(owner=owner, name=name[:200], description=description.strip())


def clean_filename(name: str) -> str:
    """The last path component with control characters removed: the name is shown, never used as a path."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = PurePath(name.replace("\\", "/")).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().lstrip(".")
    return name[:255] or "document"


def document_upload(*, dataset: Dataset, uploaded_file, parent: Job | None = None, start: bool = True) -> Document:
    """Store an uploaded file and queue its extraction job.

    Side effects: writes the file to media storage, creates a Document and an extraction Job.
    Raises ValidationError with a readable message for empty, oversized or unsupported files."""
    filename = clean_filename(getattr(uploaded_file, "name", ""))
    size = uploaded_file.size
    if size == 0:
        raise ValidationError(f"'{filename}' is empty.")
    if size > settings.GARAGE_MAX_UPLOAD_BYTES:
        limit = settings.GARAGE_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise ValidationError(f"'{filename}' is larger than the upload limit of {limit} MB.")
    suffix = PurePath(filename).suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        allowed = ", ".join(sorted(TEXT_SUFFIXES))
        raise ValidationError(f"'{filename}': files of type '{suffix or 'none'}' are not supported yet ({allowed}).")
    with transaction.atomic():
        document = Document.objects.create(owner=dataset.owner, dataset=dataset, file=uploaded_file,
                                           filename=filename, size=size)
        job = job_create(owner=dataset.owner, kind=Job.Kind.EXTRACT, config={"document": document.pk},
                         title=f"Extract {filename}", parent=parent, start=start)
        document.job = job
        document.save(update_fields=["job"])
    return document


@contextmanager
def local_path(field_file):
    """A local path for a stored file: the file itself on local storage, a temporary copy on S3."""
    try:
        yield field_file.path
        return
    except NotImplementedError:
        pass
    suffix = PurePath(field_file.name).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as copy, field_file.open("rb") as source:
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield copy.name


def document_extract(*, document: Document, reporter) -> dict:
    """Extract a document's text and split it into chunks (replacing earlier chunks).

    Side effects: updates the Document and its Chunks; on a ReadableError marks the document failed and re-raises."""
    from workers.errors import ReadableError

    reporter.phase("extracting", document.filename)
    try:
        with local_path(document.file) as path:
            extracted = extract_text(path, original_name=document.filename)
    except ReadableError as exc:
        Document.objects.filter(pk=document.pk).update(status=Document.Status.FAILED, error_message=str(exc)[:500])
        raise
    reporter.phase("chunking", f"{len(extracted.text):,} characters")
    chunks = chunk_text(extracted.text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP)
    with transaction.atomic():
        document.chunks.all().delete()
        Chunk.objects.bulk_create(
            Chunk(document=document, index=c.index, text=c.text, char_start=c.char_start, char_end=c.char_end)
            for c in chunks
        )
        document.text = extracted.text
        document.format = extracted.format
        document.pages = extracted.pages
        document.status = Document.Status.READY
        document.error_message = ""
        document.save(update_fields=["text", "format", "pages", "status", "error_message"])
    reporter.log(f"{document.filename}: {len(extracted.text):,} characters in {len(chunks)} chunks")
    return {"document": str(document.code), "chars": len(extracted.text), "chunks": len(chunks), "format": extracted.format}
