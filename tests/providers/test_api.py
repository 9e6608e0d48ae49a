"""/api/v1/providers/, /api/v1/pii-patterns/, /api/v1/audit/ and the generate action's options."""
import pytest

from apps.core.models import Job
from apps.providers.models import ExternalCallAudit, ProviderCredential
from apps.providers.services import pii_pattern_create
from tests.fakes.chat_server import Reply
from tests.providers.conftest import ALICE_KEY

pytestmark = pytest.mark.django_db


def test_it_creates_lists_and_updates_providers_without_ever_returning_the_key(alice_api, chat_server):
    response = alice_api.post("/api/v1/providers/", {"name": "Lab", "base_url": chat_server.url, "model": "fake-model",
                                                     "api_key": ALICE_KEY}, format="json")
    assert response.status_code == 201, response.content
    code = response.json()["code"]
    assert response.json()["key_hint"] == f"…{ALICE_KEY[-4:]}" and "api_key" not in response.json()
    for body in (alice_api.get("/api/v1/providers/").content, alice_api.get(f"/api/v1/providers/{code}/").content):
        assert ALICE_KEY.encode() not in body and b"api_key_encrypted" not in body
    patched = alice_api.patch(f"/api/v1/providers/{code}/", {"model": "other", "api_key": ""}, format="json")
    assert patched.status_code == 200 and patched.json()["model"] == "other" and patched.json()["key_hint"] == "no key"


def test_it_answers_400_with_a_readable_message_for_bad_providers(alice_api, alice_provider):
    bad = alice_api.post("/api/v1/providers/", {"name": "X", "base_url": "gopher://x", "model": "m"}, format="json")
    assert bad.status_code == 400 and "must start with http" in bad.json()["message"]
    dup = alice_api.post("/api/v1/providers/", {"name": "Lab vLLM", "base_url": "http://h/v1", "model": "m"}, format="json")
    assert dup.status_code == 400 and "already have a provider" in dup.json()["message"]


def test_it_tests_a_connection_through_the_api(alice_api, alice_provider, chat_server):
    chat_server.script(Reply.status(500, "warming up"))
    response = alice_api.post(f"/api/v1/providers/{alice_provider.code}/test/")
    assert response.status_code == 200 and response.json()["ok"] is False and "server error (500)" in response.json()["message"]
    assert ALICE_KEY not in response.content.decode()


def test_it_manages_pii_patterns(alice_api):
    created = alice_api.post("/api/v1/pii-patterns/", {"label": "badge", "pattern": r"B-\d{4}"}, format="json")
    assert created.status_code == 201 and created.json()["label"] == "BADGE"
    bad = alice_api.post("/api/v1/pii-patterns/", {"label": "x", "pattern": "a*"}, format="json")
    assert bad.status_code == 400 and "matches empty text" in bad.json()["message"]
    assert [p["label"] for p in alice_api.get("/api/v1/pii-patterns/").json()["results"]] == ["BADGE"]
    assert alice_api.delete(f"/api/v1/pii-patterns/{created.json()['code']}/").status_code == 204


def test_it_serves_the_audit_log_read_only(alice_api, alice_provider, chat_server):
    chat_server.script(Reply.text("OK"))
    alice_api.post(f"/api/v1/providers/{alice_provider.code}/test/")
    [entry] = alice_api.get("/api/v1/audit/").json()["results"]
    assert entry["purpose"] == "test" and entry["endpoint"] == chat_server.url and entry["ok"] is True
    assert entry["characters_sent"] > 0 and entry["credential"] == str(alice_provider.code)
    assert alice_api.get(f"/api/v1/audit/{entry['code']}/").status_code == 200
    assert alice_api.delete(f"/api/v1/audit/{entry['code']}/").status_code == 405
    assert alice_api.post("/api/v1/audit/", {}, format="json").status_code == 405
    assert alice_api.get("/api/v1/audit/?purpose=generate").json()["results"] == []
    assert alice_api.get("/api/v1/audit/?job=not-a-uuid").json()["results"] == []


def test_it_answers_404_to_strangers(bob_api, alice, alice_provider, chat_server):
    chat_server.script(Reply.text("OK"))
    from apps.providers.services import provider_credential_test

    provider_credential_test(credential=alice_provider)
    pattern = pii_pattern_create(owner=alice, label="X", pattern="xyz")
    audit = ExternalCallAudit.objects.get()
    for url in [f"/api/v1/providers/{alice_provider.code}/", f"/api/v1/pii-patterns/{pattern.code}/",
                f"/api/v1/audit/{audit.code}/"]:
        assert bob_api.get(url).status_code == 404, url
        assert bob_api.delete(url).status_code in (404, 405), url
    assert bob_api.patch(f"/api/v1/providers/{alice_provider.code}/", {"model": "x"}, format="json").status_code == 404
    assert bob_api.post(f"/api/v1/providers/{alice_provider.code}/test/").status_code == 404
    for listing in ("/api/v1/providers/", "/api/v1/pii-patterns/", "/api/v1/audit/"):
        assert bob_api.get(listing).json()["results"] == [], listing
    assert ProviderCredential.objects.filter(pk=alice_provider.pk).exists()
    assert len(chat_server.chat_requests) == 1  # bob's test request never reached the endpoint


def test_it_starts_generation_with_options_through_the_api(alice_api, bob_api, bob, extracted_dataset, alice_provider):
    url = f"/api/v1/datasets/{extracted_dataset.code}/generate/"
    response = alice_api.post(url, {"backend": "endpoint", "provider": str(alice_provider.code), "num_pairs": 5,
                                    "summary": "A valley guide"}, format="json")
    assert response.status_code == 202, response.content
    config = response.json()["config"]
    assert config["backend"] == "endpoint" and config["provider"] == str(alice_provider.code) and config["num_pairs"] == 5
    assert config["scrub_pii"] is True and ALICE_KEY not in response.content.decode()
    form = alice_api.post(url, {"backend": "local_model", "model_path": "tiny-gemma3"})  # multipart, no scrub_pii field
    assert form.status_code == 202 and form.json()["queue"] == "gpu" and form.json()["config"]["scrub_pii"] is True
    assert alice_api.post(url).json()["config"]["backend"] == "extractive"
    bad = alice_api.post(url, {"backend": "endpoint", "provider": "default"}, format="json")
    assert bad.status_code == 400 and "no default chat endpoint" in bad.json()["message"]
    assert alice_api.post(url, {"num_pairs": 0}, format="json").status_code == 400
    # Bob can neither start alice's generation nor use her provider on his own dataset.
    assert bob_api.post(url, {}, format="json").status_code == 404
    from apps.datasets.services import dataset_create

    bobs = dataset_create(owner=bob, name="Bob's")
    stolen = bob_api.post(f"/api/v1/datasets/{bobs.code}/generate/", {"backend": "endpoint", "provider": str(alice_provider.code)},
                          format="json")
    assert stolen.status_code == 404
    assert Job.objects.filter(kind=Job.Kind.GENERATE, owner=bob).count() == 0
