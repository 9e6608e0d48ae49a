"""A document's status is read from its extraction (or import) job, never copied onto the row: a document whose job
was cancelled, reaped or crashed shows that on the pages and in the API, never "Waiting" for ever."""
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.core.models import Job
from apps.core.services import job_cancel, job_retry, jobs_reap
from apps.datasets.models import Document, QAPair
from apps.datasets.services import dataset_create, document_upload, qa_generate_start
from tests.fixtures.jobs import run_job
from workers.jobs import INTERNAL_ERROR

pytestmark = pytest.mark.django_db

REAPED = "The worker running this job stopped unexpectedly. You can retry it."


@pytest.fixture
def dataset(alice):
    return dataset_create(owner=alice, name="Notes")


def upload(dataset, name="notes.md", text=b"The sky over the valley is green."):
    return document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile(name, text), start=False)


def shown(client, dataset, document) -> tuple[str, str]:
    """The status badge of `document` on its dataset's page and on its own page."""
    badges = []
    for url in (f"/datasets/{dataset.code}/", f"/datasets/documents/{document.code}/"):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        if url.endswith(f"{dataset.code}/"):  # the dataset page lists every document: take this one's row
            html = html[html.index(f"/datasets/documents/{document.code}/"):]
        badges.append(re.search(r'data-field="document-status">([^<]*)<', html).group(1))
    return tuple(badges)


def listed(api, dataset, document) -> dict:
    response = api.get(f"/api/v1/datasets/{dataset.code}/documents/")
    assert response.status_code == 200
    return next(row for row in response.json() if row["code"] == str(document.code))


def crash_extraction(document):
    """Run the extraction as a worker does, on a stored file that vanished: an error nobody wrote a message for."""
    document.file.storage.delete(document.file.name)
    return run_job(document.job)


def test_it_waits_while_the_job_is_queued_and_says_so_while_it_runs(alice_client, alice_api, dataset):
    document = upload(dataset)
    assert shown(alice_client, dataset, document) == ("Waiting for extraction",) * 2
    assert listed(alice_api, dataset, document)["status"] == "pending"
    Job.objects.filter(pk=document.job_id).update(status=Job.Status.RUNNING, started_at=timezone.now())
    assert shown(alice_client, dataset, document) == ("Extracting",) * 2
    assert listed(alice_api, dataset, document)["status"] == "pending"


def test_a_document_whose_extraction_succeeded_is_ready(alice_client, alice_api, dataset):
    document = upload(dataset)
    assert run_job(document.job).status == Job.Status.SUCCEEDED
    assert shown(alice_client, dataset, document) == ("Extracted",) * 2
    row = listed(alice_api, dataset, document)
    assert (row["status"], row["error_message"]) == ("ready", "")


def test_a_cancelled_extraction_shows_cancelled_never_waiting(alice_client, alice_api, dataset):
    document = upload(dataset)
    job_cancel(job=document.job)
    assert Job.objects.get(pk=document.job_id).status == Job.Status.CANCELLED
    assert shown(alice_client, dataset, document) == ("Cancelled",) * 2
    row = listed(alice_api, dataset, document)
    assert (row["status"], row["error_message"]) == ("cancelled", "")
    with pytest.raises(ValidationError, match="wait for its extraction"):  # nothing extracted to generate from
        qa_generate_start(dataset=dataset)


def test_an_extraction_failed_by_the_reaper_shows_failed_with_its_reason(alice_client, alice_api, dataset, settings):
    settings.GARAGE_STALE_AFTER = 60
    document = upload(dataset)
    Job.objects.filter(pk=document.job_id).update(status=Job.Status.RUNNING,
                                                  heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert jobs_reap() == 1
    assert shown(alice_client, dataset, document) == ("Failed",) * 2
    assert REAPED in alice_client.get(f"/datasets/{dataset.code}/").content.decode()
    row = listed(alice_api, dataset, document)
    assert (row["status"], row["error_message"]) == ("failed", REAPED)


def test_a_crashed_extraction_shows_failed_with_the_readable_message(alice_client, alice_api, dataset):
    document = upload(dataset)
    job = crash_extraction(document)
    assert job.status == Job.Status.FAILED and job.error_message == INTERNAL_ERROR, job.error_message
    assert shown(alice_client, dataset, document) == ("Failed",) * 2
    row = listed(alice_api, dataset, document)
    assert (row["status"], row["error_message"]) == ("failed", INTERNAL_ERROR)
    assert "Traceback" not in alice_client.get(f"/datasets/documents/{document.code}/").content.decode()


def test_a_retried_extraction_waits_again_then_follows_its_job(alice_api, dataset):
    document = upload(dataset)
    job_cancel(job=document.job)
    job_retry(job=Job.objects.get(pk=document.job_id))
    assert listed(alice_api, dataset, document)["status"] == "pending"
    run_job(Job.objects.get(pk=document.job_id))
    assert listed(alice_api, dataset, document)["status"] == "ready"


def test_only_documents_whose_job_succeeded_count_as_extracted(dataset):
    done, cancelled, waiting = upload(dataset, "a.md"), upload(dataset, "b.md"), upload(dataset, "c.md")
    run_job(done.job)
    job_cancel(job=cancelled.job)
    assert list(dataset.documents.ready()) == [done]
    assert {d.filename: d.status for d in dataset.documents.select_related("job")} == {
        "a.md": "ready", "b.md": "cancelled", "c.md": "pending"}


def test_a_document_without_a_job_is_judged_from_what_it_holds(alice, alice_client, alice_api, dataset):
    # A Hub import writes its document with its pairs, in one transaction and with no job: ready, even emptied.
    hub = Document.objects.create(owner=alice, dataset=dataset, filename="owner/name (train)", format="hub", pages=1)
    # A document whose job an administrator deleted: ready when an extraction or import filled it, else failed.
    imported = upload(dataset, "faq.md")
    QAPair.objects.create(dataset=dataset, document=imported, question="Q?", answer="A.", source=QAPair.Source.IMPORTED)
    never_read = upload(dataset, "never.md")
    Job.objects.filter(pk__in=[imported.job_id, never_read.job_id]).delete()
    statuses = {row["filename"]: (row["status"], row["error_message"])
                for row in alice_api.get(f"/api/v1/datasets/{dataset.code}/documents/").json()}
    assert statuses == {"owner/name (train)": ("ready", ""), "faq.md": ("ready", ""),
                        "never.md": ("failed", Document.JOB_GONE)}
    assert set(dataset.documents.ready()) == {hub, imported}
    never_read.refresh_from_db()
    assert shown(alice_client, dataset, never_read) == ("Failed",) * 2


def test_strangers_see_no_document_status(bob, bob_api, dataset):
    document = upload(dataset)
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_api.get(f"/api/v1/datasets/{dataset.code}/documents/").status_code == 404
    assert bob_client.get(f"/datasets/documents/{document.code}/").status_code == 404
    assert bob_client.get(f"/datasets/{dataset.code}/").status_code == 404


def test_the_api_schema_lists_the_cancelled_status(alice_api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    document = schema["components"]["schemas"]["Document"]["properties"]
    assert document["status"].get("readOnly") or "allOf" in document["status"]
    enum = document["status"].get("enum") or _resolve(schema, document["status"])["enum"]
    assert set(enum) == {"pending", "ready", "failed", "cancelled"}
    assert document["error_message"]["readOnly"]


def _resolve(schema, prop):
    ref = prop.get("$ref") or prop["allOf"][0]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
