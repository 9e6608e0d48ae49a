"""Writes of the datasets app: datasets and document uploads (their extraction runs in apps.datasets.jobs)."""
import logging
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
from apps.datasets.models import Dataset, Document
from workers.common.errors import ReadableError
from workers.common.formats import TEXT_ENCODINGS, TEXT_FORMATS, Limits, detect_format

MB = 1024 * 1024
logger = logging.getLogger(__name__)


def extract_limits() -> Limits:
    """The extraction limits from settings (GARAGE_MAX_UPLOAD_BYTES, GARAGE_EXTRACT_*, GARAGE_ZIP_*, GARAGE_OCR*)."""
    return Limits(max_bytes=settings.GARAGE_MAX_UPLOAD_BYTES, zip_max_members=settings.GARAGE_ZIP_MAX_MEMBERS,
                  zip_max_uncompressed=settings.GARAGE_ZIP_MAX_UNCOMPRESSED_MB * MB,
                  time_limit=settings.GARAGE_EXTRACT_TIME_LIMIT, memory_mb=settings.GARAGE_EXTRACT_MEMORY_MB,
                  ocr=settings.GARAGE_OCR, ocr_max_pages=settings.GARAGE_OCR_MAX_PAGES,
                  ocr_page_seconds=settings.GARAGE_OCR_PAGE_TIMEOUT, ocr_languages=settings.GARAGE_OCR_LANGUAGES)


MAX_NAME_CHARS = Dataset._meta.get_field("name").max_length
MAX_DESCRIPTION_CHARS = 20_000


def dataset_create(*, owner, name: str, description: str = "") -> Dataset:
    """Create a dataset. Side effects: creates the Dataset. Raises ValidationError for an empty, too long or
    NUL-holding name or description (PostgreSQL cannot store NUL; cutting a long name would change it unseen)."""
    name, description = (name or "").strip(), (description or "").strip()
    if not name:
        raise ValidationError("Give the dataset a name.")
    if len(name) > MAX_NAME_CHARS:
        raise ValidationError(f"The name is longer than {MAX_NAME_CHARS} characters.")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise ValidationError(f"The description is longer than {MAX_DESCRIPTION_CHARS:,} characters.")
    if "\x00" in name + description:
        raise ValidationError("The name and description cannot hold a NUL character.")
    return Dataset.objects.create(owner=owner, name=name, description=description)


class DatasetInUse(Exception):
    """The dataset cannot be deleted: models were trained on it. `blockers` names them ("fine tune 'Sky'")."""

    def __init__(self, blockers: list[str]):
        self.blockers = blockers
        shown = ", ".join(blockers[:10]) + (f" and {len(blockers) - 10} more" if len(blockers) > 10 else "")
        super().__init__(f"This dataset cannot be deleted while models trained on it remain: {shown}. "
                         "Delete them first.")


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset with its documents, chunks, pairs and frozen versions, then its documents' stored files.

    Side effects: deletes the rows and, once that has committed, the uploaded files from storage (so a deletion
    that fails keeps them). Raises DatasetInUse, naming them, when fine-tunes or other runs were trained on it:
    they keep their data's rows, so they go first."""
    from django.db.models import ProtectedError, RestrictedError

    files = list(dataset.documents.exclude(file="").values_list("file", flat=True))
    try:
        with transaction.atomic():
            dataset.delete()
    except (ProtectedError, RestrictedError) as exc:
        blocking = getattr(exc, "protected_objects", None) or getattr(exc, "restricted_objects", None) or []
        names = {f"{obj._meta.verbose_name} '{obj}'" for obj in blocking}
        raise DatasetInUse(sorted(names)) from None
    storage = Document._meta.get_field("file").storage

    def remove_files():
        for name in files:
            try:
                storage.delete(name)
            except Exception:  # a file already gone or a storage hiccup must not undo a finished deletion
                logger.warning("Could not delete stored file %s of a deleted dataset", name, exc_info=True)

    transaction.on_commit(remove_files)


def clean_filename(name: str) -> str:
    """The last path component with control characters removed: the name is shown, never used as a path."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = PurePath(name.replace("\\", "/")).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().lstrip(".")
    return name[:255] or "document"


def document_upload(*, dataset: Dataset, uploaded_file, parent: Job | None = None, start: bool = True) -> Document:
    """Store an uploaded file and queue its extraction job.

    Side effects: writes the file to media storage, creates a Document and an extraction Job.
    Raises ValidationError with a readable message for empty, oversized, unsupported, mislabeled or damaged files
    (the format is told by content; a DOCX or PPTX zip directory is checked against the zip limits)."""
    filename = clean_filename(getattr(uploaded_file, "name", ""))
    size = uploaded_file.size
    if size == 0:
        raise ValidationError(f"'{filename}' is empty.")
    if size > settings.GARAGE_MAX_UPLOAD_BYTES:
        limit = settings.GARAGE_MAX_UPLOAD_BYTES // MB
        raise ValidationError(f"'{filename}' is larger than the upload limit of {limit} MB.")
    try:
        file_format = detect_format(uploaded_file, filename=filename, limits=extract_limits())
    except ReadableError as exc:
        raise ValidationError(str(exc))
    with transaction.atomic():
        document = Document.objects.create(owner=dataset.owner, dataset=dataset, file=uploaded_file,
                                           filename=filename, size=size, format=file_format)
        job = job_create(owner=dataset.owner, kind=Job.Kind.EXTRACT, config={"document": document.pk},
                         title=f"Extract {filename}", parent=parent, start=start)
        document.job = job
        document.save(update_fields=["job"])
    return document


def document_extract_again(*, document: Document, encoding: str = "") -> Job:
    """Extract a document again, with the text encoding its owner chose ("": told by the file, as at upload).

    Side effects: records the choice on the Document and queues a new extraction job, which replaces its text and
    chunks (pairs already made from it stay). Raises ValidationError while an extraction runs, for an encoding
    not offered, or for one chosen for a format that has none (PDF, DOCX, PPTX, a Hub import)."""
    if encoding and encoding not in TEXT_ENCODINGS:
        raise ValidationError(f"Choose one of the encodings offered, not '{encoding[:40]}'.")
    if document.job is not None and not document.job.is_final:
        raise ValidationError(f"'{document.filename}' is still being extracted. Wait until it ends.")
    if document.format == Document.HUB_FORMAT or document.job is None or document.job.kind != Job.Kind.EXTRACT:
        raise ValidationError(f"'{document.filename}' was imported as training examples; there is nothing to "
                              "extract again.")
    if encoding and document.format not in TEXT_FORMATS:
        raise ValidationError(f"'{document.filename}' is a {document.format.upper()} file, which records its own "
                              "text encoding; only text files (TXT, MD, HTML, CSV, JSON) can be read in another one.")
    with transaction.atomic():
        job = job_create(owner=document.owner, kind=Job.Kind.EXTRACT, config={"document": document.pk},
                         title=f"Extract {document.filename}")
        document.encoding_choice = encoding
        document.job = job
        document.save(update_fields=["encoding_choice", "job"])
    return job


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
