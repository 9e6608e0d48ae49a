"""A text file in a legacy code page, through the platform: its encoding is detected, recorded and shown; its owner
reads it again in another encoding from the page or the API; a decoding that looks wrong says so."""
import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import Document
from apps.datasets.services import dataset_create, document_upload
from tests.fixtures import documents as fx
from tests.fixtures.encodings import SAMPLES
from tests.fixtures.jobs import run_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(alice):
    return dataset_create(owner=alice, name="Legacy files")


def extracted(dataset, name: str, data: bytes) -> Document:
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile(name, data), start=False)
    assert run_job(document.job).status == Job.Status.SUCCEEDED, document.job.error_message
    document.refresh_from_db()
    return document


def page(client, document) -> str:
    response = client.get(f"/datasets/documents/{document.code}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_cp1251_file_is_read_recorded_and_shown(alice_client, alice_api, dataset):
    encoding, text = SAMPLES["russian"]
    document = extracted(dataset, "manual.txt", text.encode(encoding))
    assert document.encoding == "cp1251" and document.text == text and document.warnings == []
    assert "перегреву уплотнений" in document.chunks.get(index=0).text
    shown_page = page(alice_client, document)
    assert "Read as Cyrillic (Windows-1251) (told by the file)." in shown_page
    assert 'data-role="extract-warning"' not in shown_page
    shown = alice_api.get(f"/api/v1/documents/{document.code}/").json()
    assert (shown["encoding"], shown["encoding_choice"], shown["warnings"], shown["ocr"]) == ("cp1251", "", [], False)
    logged = [event.data["line"] for event in document.job.events.filter(type="log")]
    assert any("read as Cyrillic (Windows-1251)" in line for line in logged), logged


def test_the_owner_reads_it_again_in_the_encoding_she_chooses(alice_client, alice_api, dataset):
    encoding, text = SAMPLES["czech"]  # ISO-8859-2, which detection takes for Windows-1250 (two letters differ)
    document = extracted(dataset, "zprava.txt", text.encode(encoding))
    assert document.encoding == "cp1250" and document.text != text

    # From the page: the choice is recorded and a new extraction replaces the text and chunks.
    response = alice_client.post(f"/datasets/documents/{document.code}/extract/", {"encoding": "iso8859-2"})
    assert response.status_code == 302
    document.refresh_from_db()
    assert document.encoding_choice == "iso8859-2" and document.job.status == Job.Status.QUEUED
    assert 'data-role="encoding-form"' not in page(alice_client, document)  # not while it is being extracted
    run_job(document.job)
    document.refresh_from_db()
    assert document.text == text and document.encoding == "iso8859-2" and document.chunks.get(index=0).text == text
    assert "Read as Central European (ISO-8859-2) (your choice)." in page(alice_client, document)

    # From the API, a wrong choice: the text is garbled, and the document says so on its page and in the API.
    response = alice_api.post(f"/api/v1/documents/{document.code}/extract/", {"encoding": "cp1251"}, format="json")
    assert response.status_code == 202 and response.json()["kind"] == Job.Kind.EXTRACT
    run_job(Job.objects.get(code=response.json()["code"]))
    shown = alice_api.get(f"/api/v1/documents/{document.code}/").json()
    assert shown["encoding"] == "cp1251" and shown["encoding_choice"] == "cp1251"
    assert len(shown["warnings"]) == 1 and "looks garbled" in shown["warnings"][0]
    shown_page = html.unescape(page(alice_client, document))
    assert ('data-role="extract-warning">The text of \'zprava.txt\' looks garbled when read as Cyrillic (Windows-1251)'
            in shown_page)

    # Back to automatic.
    response = alice_api.post(f"/api/v1/documents/{document.code}/extract/", {}, format="json")
    run_job(Job.objects.get(code=response.json()["code"]))
    document.refresh_from_db()
    assert (document.encoding_choice, document.encoding) == ("", "cp1250")


def test_choices_that_cannot_apply_are_refused_readably(alice_client, alice_api, dataset, tmp_path):
    document = extracted(dataset, "notes.txt", "Plain notes about the valley.".encode())
    response = alice_api.post(f"/api/v1/documents/{document.code}/extract/", {"encoding": "klingon"}, format="json")
    assert response.status_code == 400 and "klingon" in response.content.decode()
    response = alice_client.post(f"/datasets/documents/{document.code}/extract/", {"encoding": "klingon"}, follow=True)
    assert "Choose one of the encodings offered." in response.content.decode()

    pdf = extracted(dataset, "report.pdf", fx.text_pdf(tmp_path / "report.pdf", table=False).read_bytes())
    response = alice_api.post(f"/api/v1/documents/{pdf.code}/extract/", {"encoding": "cp1251"}, format="json")
    assert response.status_code == 400 and "records its own text encoding" in response.json()["message"]
    assert 'data-role="encoding-form"' not in page(alice_client, pdf)

    waiting = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("later.txt", b"Later."), start=False)
    response = alice_api.post(f"/api/v1/documents/{waiting.code}/extract/", {}, format="json")
    assert response.status_code == 400 and "still being extracted" in response.json()["message"]
