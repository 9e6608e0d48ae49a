import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import Document
from apps.datasets.jobs import qa_generate
from apps.datasets.services import clean_filename, dataset_create, document_upload
from tests.fixtures.jobs import run_job
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(alice):
    return dataset_create(owner=alice, name="Notes")


@pytest.mark.parametrize("name,expected", [
    ("../../etc/passwd", "passwd"), ("..\\..\\windows\\evil.txt", "evil.txt"), ("/abs/path/notes.md", "notes.md"),
    ("bad\x00name\x1f.txt", "badname.txt"), ("..", "document"), (".hidden.txt", "hidden.txt"),
])
def test_it_keeps_only_a_harmless_file_name(name, expected):
    assert clean_filename(name) == expected


def test_it_stores_uploads_under_a_uuid_path_whatever_the_name(dataset):
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("../../../x.txt", b"Some text here."), start=False)
    assert document.filename == "x.txt"
    assert ".." not in document.file.name and document.file.name.startswith(f"documents/{dataset.owner_id}/")
    assert document.job.kind == Job.Kind.EXTRACT and document.job.status == Job.Status.QUEUED


@pytest.mark.parametrize("upload,message", [
    (SimpleUploadedFile("empty.txt", b""), "is empty"),
    (SimpleUploadedFile("deck.pptx", b"PK\x03\x04"), "damaged or incomplete"),
    (SimpleUploadedFile("noext", b"\x89PNG\r\n\x1a\n\x00\x00"), "PNG image, which is not supported"),
    (SimpleUploadedFile("tool.exe", b"hello"), "not supported"),
])
def test_it_rejects_bad_uploads_with_a_readable_message(dataset, upload, message):
    with pytest.raises(ValidationError, match=message):
        document_upload(dataset=dataset, uploaded_file=upload, start=False)
    assert not Document.objects.exists()


def test_it_rejects_files_over_the_upload_limit(dataset, settings):
    settings.GARAGE_MAX_UPLOAD_BYTES = 1024 * 1024
    with pytest.raises(ValidationError, match="larger than the upload limit of 1 MB"):
        document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("big.txt", b"a" * (1024 * 1024 + 1)), start=False)


def test_it_extracts_chunks_and_generates_pairs_with_provenance(dataset):
    text = "The capital of the valley is Eldhavn.\n\nThe longest river is the Sorrel.\n"
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("facts.md", text.encode()), start=False)
    result = run_job(document.job).result  # extracted as a worker runs it: the document is ready once its job is
    document.refresh_from_db()
    assert document.status == Document.Status.READY and result["chunks"] == 1 and document.text == text
    generated = qa_generate(dataset=dataset, max_pairs=None, reporter=RecordingReporter())
    assert generated["pairs"] == 6  # two facts, each asked three ways
    pair = dataset.pairs.get(question="What is the longest river?")
    assert pair.answer == "the Sorrel" and pair.chunk.document == document
    assert dataset.pairs.filter(fact=pair.fact).count() == 3 and pair.fact


def test_it_marks_an_unreadable_document_failed(dataset):
    # Binary files are refused at upload already; a broken JSON file passes that look and fails on reading.
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("rows.json", b'{"a": 1,,}'), start=False)
    job = run_job(document.job)  # the job fails with the readable error, and the document shows it
    assert job.status == Job.Status.FAILED and "not valid JSON" in job.error_message
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED and document.error_message == job.error_message
