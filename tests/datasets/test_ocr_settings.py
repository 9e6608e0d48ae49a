"""The OCR settings (GARAGE_OCR*) reach the extraction limits the worker passes to the extractor, and text read by
OCR is marked as such in provenance."""
import shutil

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.services import dataset_create, document_upload
from apps.datasets.services.documents import extract_limits
from tests.fixtures.jobs import run_job


def test_extraction_limits_carry_the_ocr_settings(settings):
    settings.GARAGE_OCR = False
    settings.GARAGE_OCR_MAX_PAGES = 7
    settings.GARAGE_OCR_PAGE_TIMEOUT = 12
    settings.GARAGE_OCR_LANGUAGES = "eng+deu"
    limits = extract_limits()
    assert (limits.ocr, limits.ocr_max_pages, limits.ocr_page_seconds, limits.ocr_languages) == \
        (False, 7, 12, "eng+deu")


@pytest.mark.django_db
def test_a_scan_uploaded_to_a_dataset_has_its_ocr_text_marked(alice_client, alice_api, alice, tmp_path):
    """Through the platform: a scanned page's text reaches the chunks, which are marked as read by OCR, and the
    document's page and the API say so."""
    from tests.workers.test_extract_ocr import SCANNED_WORDS, mixed_pdf, text_picture

    if shutil.which("tesseract") is None:
        pytest.skip("needs Debian's tesseract-ocr and tesseract-ocr-eng (.ci/run installs them)")
    dataset = dataset_create(owner=alice, name="Scans")
    path = mixed_pdf(tmp_path / "mixed.pdf", ["The lighthouse keeper writes the tides into a ledger. " * 40,
                                              text_picture(["The juniper harvest begins in late October.",
                                                            "Marmalade ferments in oak barrels for nine weeks."])])
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("mixed.pdf", path.read_bytes()),
                               start=False)
    assert run_job(document.job).status == Job.Status.SUCCEEDED, document.job.error_message
    document.refresh_from_db()
    assert all(word in document.text for word in SCANNED_WORDS) and len(document.ocr_spans) == 1
    chunks = list(document.chunks.order_by("index"))
    assert [chunk.ocr for chunk in chunks] == ["juniper" in chunk.text for chunk in chunks] and chunks[-1].ocr
    assert not chunks[0].ocr
    page = alice_client.get(f"/datasets/documents/{document.code}/", {"chunk": chunks[-1].index}).content.decode()
    assert 'data-role="ocr-note"' in page and ">OCR</span>" in page
    assert alice_api.get(f"/api/v1/documents/{document.code}/").json()["ocr"] is True
