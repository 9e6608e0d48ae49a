"""Every endpoint, page and download answers 404 to anyone but the owner."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.services import dataset_create, document_upload
from apps.training.models import FineTune

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_things(alice, settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path
    dataset = dataset_create(owner=alice, name="Private")
    document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("a.txt", b"The key is secret."), start=False)
    job = job_create(owner=alice, kind=Job.Kind.SLEEP, start=False)
    finetune = FineTune.objects.create(owner=alice, dataset=dataset, base_model="tiny-gemma3", name="Mine", job=None,
                                       artifact="x/adapter.zip")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "adapter.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    return {"dataset": dataset.code, "job": job.code, "finetune": finetune.code}


API = ["/api/v1/datasets/{dataset}/", "/api/v1/datasets/{dataset}/documents/", "/api/v1/datasets/{dataset}/pairs/",
       "/api/v1/jobs/{job}/", "/api/v1/jobs/{job}/events/", "/api/v1/finetunes/{finetune}/",
       "/api/v1/finetunes/{finetune}/download/"]
API_POST = ["/api/v1/datasets/{dataset}/generate/", "/api/v1/jobs/{job}/cancel/", "/api/v1/jobs/{job}/retry/"]
PAGES = ["/datasets/{dataset}/", "/jobs/{job}/", "/training/{finetune}/", "/training/{finetune}/download/"]
PAGE_POSTS = ["/datasets/{dataset}/generate/", "/datasets/{dataset}/train/", "/datasets/{dataset}/upload/",
              "/jobs/{job}/cancel/", "/jobs/{job}/retry/"]


def test_it_serves_the_owner(alices_things, alice_api, alice_client):
    for url in API:
        assert alice_api.get(url.format(**alices_things)).status_code == 200, url
    for url in PAGES:
        assert alice_client.get(url.format(**alices_things)).status_code == 200, url


def test_it_answers_404_to_strangers(alices_things, bob, bob_api, client):
    client.force_login(bob)
    for url in API:
        assert bob_api.get(url.format(**alices_things)).status_code == 404, url
    for url in API_POST:
        assert bob_api.post(url.format(**alices_things)).status_code == 404, url
    for url in PAGES:
        assert client.get(url.format(**alices_things)).status_code == 404, url
    for url in PAGE_POSTS:
        assert client.post(url.format(**alices_things)).status_code == 404, url
    assert bob_api.get("/api/v1/datasets/").json()["results"] == []
    assert bob_api.get("/api/v1/jobs/").json()["results"] == []


def test_it_asks_anonymous_visitors_to_sign_in(alices_things, client):
    from rest_framework.test import APIClient

    for url in API:
        assert APIClient().get(url.format(**alices_things)).status_code in (401, 403), url
    for url in PAGES:
        response = client.get(url.format(**alices_things))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
