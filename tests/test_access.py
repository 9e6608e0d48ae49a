"""Every endpoint, page and download answers 404 to anyone but the owner."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.services import dataset_create, dataset_version_freeze, document_upload, qa_pair_create
from apps.evaluation.services import benchmark_run_create
from apps.prompts.services import saved_prompt_create
from apps.training.models import FineTune

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_things(alice, settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path
    dataset = dataset_create(owner=alice, name="Private")
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("a.txt", b"The key is secret."), start=False)
    pair = qa_pair_create(dataset=dataset, question="What is the key?", answer="Secret.")
    version = dataset_version_freeze(dataset=dataset)
    job = job_create(owner=alice, kind=Job.Kind.SLEEP, start=False)
    finetune = FineTune.objects.create(owner=alice, dataset=dataset, base_model="tiny-gemma3", name="Mine", job=None,
                                       artifact="x/adapter.zip")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "adapter.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    benchmark = benchmark_run_create(owner=alice, benchmark="gsm8k", base_model="tiny-gemma3", settings={"limit": 3})
    prompt = saved_prompt_create(owner=alice, name="Mine", text="Answer in one word.")
    return {"dataset": dataset.code, "job": job.code, "finetune": finetune.code, "document": document.code, "pair": pair.pk,
            "version": version.code, "benchmark": benchmark.code, "prompt": prompt.code}


API = ["/api/v1/datasets/{dataset}/", "/api/v1/datasets/{dataset}/documents/", "/api/v1/datasets/{dataset}/pairs/",
       "/api/v1/jobs/{job}/", "/api/v1/jobs/{job}/events/", "/api/v1/finetunes/{finetune}/",
       "/api/v1/finetunes/{finetune}/download/", "/api/v1/finetunes/{finetune}/outputs/",
       "/api/v1/finetunes/{finetune}/outputs/adapter/download/",
       "/api/v1/datasets/{dataset}/pairs/{pair}/", "/api/v1/datasets/{dataset}/versions/", "/api/v1/datasets/{dataset}/export/",
       "/api/v1/datasets/{dataset}/export/?version=1&style=alpaca", "/api/v1/versions/{version}/",
       "/api/v1/versions/{version}/examples/", "/api/v1/versions/{version}/export/?style=sharegpt",
       "/api/v1/benchmarks/{benchmark}/", "/api/v1/benchmarks/{benchmark}/items/", "/api/v1/saved-prompts/{prompt}/",
       "/api/v1/plan/?version={version}", "/api/v1/plan/?dataset={dataset}", "/api/v1/documents/{document}/"]
API_POST = ["/api/v1/finetunes/{finetune}/exports/", "/api/v1/datasets/{dataset}/generate/", "/api/v1/jobs/{job}/cancel/", "/api/v1/jobs/{job}/retry/",
            "/api/v1/datasets/{dataset}/pairs/", "/api/v1/datasets/{dataset}/pairs/{pair}/restore/",
            "/api/v1/datasets/{dataset}/curate/", "/api/v1/datasets/{dataset}/restore/", "/api/v1/datasets/{dataset}/import/",
            "/api/v1/datasets/{dataset}/versions/", "/api/v1/documents/{document}/extract/"]
# Other methods than GET and POST: (method, url).
API_WRITE = [("patch", "/api/v1/datasets/{dataset}/pairs/{pair}/"), ("put", "/api/v1/datasets/{dataset}/pairs/{pair}/"),
             ("delete", "/api/v1/datasets/{dataset}/pairs/{pair}/"), ("patch", "/api/v1/versions/{version}/"),
             ("delete", "/api/v1/datasets/{dataset}/"), ("patch", "/api/v1/finetunes/{finetune}/")]
PAGES = ["/datasets/{dataset}/", "/jobs/{job}/", "/training/{finetune}/", "/training/{finetune}/download/",
         "/training/{finetune}/outputs/adapter/download/",
         "/datasets/{dataset}/export/?style=messages", "/datasets/{dataset}/pairs/{pair}/edit/", "/datasets/versions/{version}/",
         "/datasets/versions/{version}/export/?style=alpaca", "/datasets/documents/{document}/",
         "/benchmarks/{benchmark}/", "/benchmarks/{benchmark}/items.jsonl", "/prompts/saved/{prompt}/",
         "/hub/publish/{finetune}/", "/playground/?model={finetune}", "/playground/?prompt={prompt}",
         "/training/{finetune}/lineage/", "/training/examples/{version}/0/", "/rl/new/?start={finetune}",
         "/datasets/{dataset}/?start={finetune}", "/datasets/versions/{version}/?start={finetune}"]
PAGE_POSTS = ["/training/{finetune}/exports/", "/training/{finetune}/rename/", "/datasets/{dataset}/generate/", "/datasets/{dataset}/train/", "/datasets/{dataset}/upload/",
              "/jobs/{job}/cancel/", "/jobs/{job}/retry/",
              "/datasets/{dataset}/pairs/add/", "/datasets/{dataset}/pairs/{pair}/edit/", "/datasets/{dataset}/pairs/{pair}/delete/",
              "/datasets/{dataset}/pairs/{pair}/restore/", "/datasets/{dataset}/restore/", "/datasets/{dataset}/curate/",
              "/datasets/{dataset}/import/", "/datasets/{dataset}/freeze/", "/datasets/versions/{version}/note/",
              "/datasets/versions/{version}/train/", "/prompts/saved/{prompt}/delete/", "/datasets/{dataset}/delete/",
              "/datasets/documents/{document}/extract/"]


def test_it_serves_the_owner(alices_things, alice_api, alice_client):
    for url in API:
        assert alice_api.get(url.format(**alices_things)).status_code == 200, url
    for url in PAGES:
        assert alice_client.get(url.format(**alices_things)).status_code == 200, url


def test_it_answers_404_to_strangers(alices_things, alice_api, bob, bob_api, client):
    client.force_login(bob)
    for url in API:
        assert bob_api.get(url.format(**alices_things)).status_code == 404, url
    for url in API_POST:
        assert bob_api.post(url.format(**alices_things)).status_code == 404, url
    for method, url in API_WRITE:
        assert getattr(bob_api, method)(url.format(**alices_things), {"note": "x", "answer": "x"}, format="json").status_code == 404, url
    for url in PAGES:
        assert client.get(url.format(**alices_things)).status_code == 404, url
    for url in PAGE_POSTS:
        assert client.post(url.format(**alices_things)).status_code == 404, url
    assert bob_api.get("/api/v1/datasets/").json()["results"] == []
    assert bob_api.get("/api/v1/jobs/").json()["results"] == []
    # The stranger's deletes touched nothing of Alice's.
    for url in API:
        assert alice_api.get(url.format(**alices_things)).status_code == 200, url


def test_it_asks_anonymous_visitors_to_sign_in(alices_things, client):
    from rest_framework.test import APIClient

    for url in API:
        assert APIClient().get(url.format(**alices_things)).status_code in (401, 403), url
    for url in PAGES:
        response = client.get(url.format(**alices_things))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_it_answers_health_to_anyone_and_metrics_to_staff_only(alice_api, alice_client):
    """Not owned by anyone: /healthz is for load balancers (never a sign-in redirect), /metrics for staff; anyone else
    learns no more about /metrics than about another user's things (404), API token or not."""
    from django.test import Client

    from tests.factories import UserFactory

    anonymous = Client()
    assert anonymous.get("/healthz").status_code in (200, 503)
    assert alice_client.get("/healthz").status_code in (200, 503)
    assert anonymous.get("/metrics").status_code == 404
    assert alice_client.get("/metrics").status_code == 404
    assert alice_api.get("/metrics").status_code == 404
    staff = Client()
    staff.force_login(UserFactory(email="operator@example.com", is_staff=True))
    assert staff.get("/metrics").status_code == 200
    for url in ("/healthz", "/metrics"):
        assert staff.post(url).status_code == 405, url


@pytest.mark.parametrize("code", ["zzz", "", "0" * 40])
def test_it_answers_404_to_codes_that_are_no_codes(alice, code):
    from django.http import Http404

    from apps.core.selectors import job_get_for_user
    from apps.datasets.selectors import dataset_get_for_user
    from apps.training.selectors import finetune_get_for_user

    for get in (job_get_for_user, dataset_get_for_user, finetune_get_for_user):
        with pytest.raises(Http404):
            get(user=alice, code=code)
