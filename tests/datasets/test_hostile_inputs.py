"""Hostile uploads through the service, the API and a live worker: every one refused or failed with a readable
message, nothing half-stored, and the worker still serving the next job."""
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import Document
from apps.datasets.jobs import document_extract
from apps.datasets.services import dataset_create, document_upload
from tests.fixtures.jobs import run_job
from tests.fixtures import documents as fx
from tests.live import wait_for
from workers.common.errors import ReadableError
from workers.engine.reporting import RecordingReporter


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    docx = fx.rich_docx(folder / "guide.docx")
    pptx = fx.rich_pptx(folder / "talk.pptx")
    return {
        "pdf": fx.text_pdf(folder / "guide.pdf"),
        "docx": docx,
        "pptx": pptx,
        "encrypted": fx.encrypted_pdf(folder / "locked.pdf"),
        "scanned": fx.image_only_pdf(folder / "scan.pdf"),
        "broken docx": fx.with_broken_part(docx, folder / "broken.docx", "word/document.xml"),
        "truncated docx": fx.truncated(docx, folder / "cut.docx"),
        "bomb docx": fx.with_extra_members(docx, folder / "bomb.docx", zeros_mb=3),
        "many pptx": fx.with_extra_members(pptx, folder / "many.pptx", count=40),
    }


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes())


@pytest.fixture
def dataset(alice):
    return dataset_create(owner=alice, name="Valley")


@pytest.fixture
def small_zip_limits(settings):
    settings.GARAGE_ZIP_MAX_UNCOMPRESSED_MB = 2
    settings.GARAGE_ZIP_MAX_MEMBERS = 30


@pytest.mark.django_db
@pytest.mark.parametrize("case,phrase", [
    ("empty", "is empty"), ("oversized", "larger than the upload limit of 1 MB"),
    ("text named pdf", "named like a PDF file but holds plain text"), ("image named docx", "PNG image"),
    ("truncated docx", "damaged or incomplete"), ("bomb docx", "zip bomb"), ("many pptx", "zip bomb"),
    ("program", "files of type '.exe' are not supported"),
])
def test_it_refuses_hostile_uploads_before_storing_anything(dataset, files, settings, small_zip_limits, case, phrase):
    settings.GARAGE_MAX_UPLOAD_BYTES = 1024 * 1024
    uploads = {
        "empty": SimpleUploadedFile("empty.pdf", b""),
        "oversized": SimpleUploadedFile("huge.txt", b"words " * 200_000),
        "text named pdf": SimpleUploadedFile("report.pdf", b"Plain words, not a PDF."),
        "image named docx": SimpleUploadedFile("photo.docx", b"\x89PNG\r\n\x1a\n" + bytes(64)),
        "truncated docx": upload(files["truncated docx"]),
        "bomb docx": upload(files["bomb docx"]),
        "many pptx": upload(files["many pptx"]),
        "program": SimpleUploadedFile("setup.exe", b"hello"),
    }
    with pytest.raises(ValidationError, match=phrase):
        document_upload(dataset=dataset, uploaded_file=uploads[case], start=False)
    assert not Document.objects.exists() and not Job.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("case,phrase", [("encrypted", "password-protected"), ("scanned", "no text layer"),
                                         ("broken docx", "could not be read as a Word document")])
def test_it_fails_the_document_readably_when_a_stored_file_cannot_be_read(dataset, files, case, phrase):
    document = document_upload(dataset=dataset, uploaded_file=upload(files[case]), start=False)
    with pytest.raises(ReadableError, match=phrase):
        document_extract(document=document, reporter=RecordingReporter())
    job = run_job(document.job)  # as the worker runs it: the job fails readably, and the document shows it
    assert job.status == Job.Status.FAILED and phrase in job.error_message
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED and phrase in document.error_message
    assert not document.chunks.exists() and document.text == ""


@pytest.mark.django_db
@pytest.mark.parametrize("name,shown", [
    ("../../../etc/passwd.pdf", "passwd.pdf"), ("..\\..\\windows\\win.ini.pdf", "win.ini.pdf"),
    ("/abs/guide.pdf", "guide.pdf"), ("bad\x00na\x1fme.pdf", "badname.pdf"), ("....pdf", "pdf"),
])
def test_it_keeps_path_tricks_out_of_storage(dataset, files, name, shown):
    document = document_upload(dataset=dataset, uploaded_file=upload(files["pdf"], name), start=False)
    assert document.filename == shown
    stored = Path(document.file.name)
    assert stored.parent == Path(f"documents/{dataset.owner_id}") and ".." not in document.file.name
    assert Path(document.file.path).resolve().is_relative_to(Path(document.file.storage.location).resolve())
    assert document.format == "pdf"


@pytest.mark.django_db
def test_it_answers_400_with_the_message_to_the_owner_and_404_to_a_stranger(alice_api, bob_api, dataset, files, settings):
    settings.GARAGE_ZIP_MAX_UNCOMPRESSED_MB = 2
    url = f"/api/v1/datasets/{dataset.code}/documents/"
    for bad, phrase in [(upload(files["bomb docx"]), "zip bomb"), (SimpleUploadedFile("x.pdf", b"text"), "named like a PDF")]:
        response = alice_api.post(url, {"file": bad}, format="multipart")
        assert response.status_code == 400 and phrase in response.json()["message"]
        assert "Traceback" not in response.content.decode()
    empty = alice_api.post(url, {"file": SimpleUploadedFile("e.docx", b"")}, format="multipart")
    assert empty.status_code == 400 and empty.json()["message"] == "'e.docx' is empty."
    good = alice_api.post(url, {"file": upload(files["pptx"], "../talk.pptx")}, format="multipart")
    assert good.status_code == 201 and good.json()["format"] == "pptx" and good.json()["filename"] == "talk.pptx"
    assert bob_api.post(url, {"file": upload(files["pptx"])}, format="multipart").status_code == 404
    assert bob_api.get(url).status_code == 404
    assert Document.objects.filter(dataset=dataset).count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_live_worker_fails_a_hostile_file_readably_and_serves_the_next_job(alice, alice_api, files, worker):
    dataset = dataset_create(owner=alice, name="Live")
    url = f"/api/v1/datasets/{dataset.code}/documents/"

    def upload_and_wait(path):
        response = alice_api.post(url, {"file": upload(path)}, format="multipart")
        assert response.status_code == 201, response.content
        job = Job.objects.get(code=response.json()["job"])
        wait_for(lambda: Job.objects.get(pk=job.pk).is_final, 60, what=f"the extraction of {path.name}")
        job.refresh_from_db()
        return job, Document.objects.get(code=response.json()["code"])

    job, document = upload_and_wait(files["encrypted"])
    assert job.status == Job.Status.FAILED and "password-protected" in job.error_message
    assert document.status == Document.Status.FAILED and "password-protected" in document.error_message
    job, document = upload_and_wait(files["broken docx"])
    assert job.status == Job.Status.FAILED and "could not be read as a Word document" in job.error_message
    job, document = upload_and_wait(files["pdf"])
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert document.status == Document.Status.READY and document.pages == 4 and document.chunks.exists()
    assert job.result["format"] == "pdf" and job.result["tables"] == 1
