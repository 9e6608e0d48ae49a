import json
import logging

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.datasets.models import QAPair
from apps.datasets.jobs import qa_generate
from apps.datasets.services import qa_generate_start
from apps.providers.client import provider_client, provider_resolve
from apps.providers.models import ExternalCallAudit, ProviderCredential
from apps.providers.services import (
    SITE_DEFAULT,
    pii_pattern_create,
    provider_credential_create,
    provider_credential_test,
    provider_credential_update,
    provider_credentials_reencrypt,
)
from tests.fakes.chat_server import Reply
from tests.providers.conftest import ALICE_KEY
from workers.common.errors import ReadableError
from workers.engine.reporting import RecordingReporter
from workers.common.catalogue import TINY_MODEL_ID

pytestmark = pytest.mark.django_db


def test_it_stores_the_key_encrypted_and_keeps_only_its_last_four_characters(alice, alice_provider):
    row = ProviderCredential.objects.values().get(pk=alice_provider.pk)
    assert ALICE_KEY not in json.dumps(row, default=str)
    assert row["api_key_hint"] == ALICE_KEY[-4:] and alice_provider.key_display == f"…{ALICE_KEY[-4:]}"
    assert provider_resolve(owner=alice, provider=str(alice_provider.code)).api_key == ALICE_KEY
    short = provider_credential_create(owner=alice, name="Short", base_url="http://gpu-box:11434/v1", model="m", api_key="abc123")
    assert short.key_display == "set"  # four characters would give away too much of a short key
    none = provider_credential_create(owner=alice, name="Ollama", base_url="http://gpu-box:11434/v1/", model="m")
    assert none.key_display == "no key" and none.base_url == "http://gpu-box:11434/v1"


def test_it_scrubs_and_audits_every_call_of_the_one_provider_client(alice, bob, alice_provider, chat_server,
                                                                     llm_settings):
    chat_server.script(Reply.text("Noted."), Reply.text("Noted."))
    with provider_client(owner=alice, provider=str(alice_provider.code), purpose=ExternalCallAudit.Purpose.OTHER,
                         scrub_pii=True) as client:
        assert client.call([{"role": "user", "content": "Write to mayor@eldhavn.example"}]).text == "Noted."
        [result] = client.complete_many([[{"role": "user", "content": "Nothing personal here."}]])
    assert result.ok and "mayor@eldhavn.example" not in chat_server.chat_requests[0].text
    audits = ExternalCallAudit.objects.filter(owner=alice).order_by("id")
    assert [(a.purpose, a.pii_replacements, a.provider) for a in audits] == [("other", 1, "Lab vLLM"), ("other", 0, "Lab vLLM")]
    with pytest.raises(ReadableError, match="was deleted"):  # a stranger's code reads as a deleted provider
        provider_client(owner=bob, provider=str(alice_provider.code), purpose=ExternalCallAudit.Purpose.OTHER)


@pytest.mark.parametrize("base_url,message", [
    ("ftp://host/v1", "must start with http"), ("http://user:pw@host/v1", "not inside the URL"), ("", "base URL"),
    ("http://host/v1?key=x", "query string"),
])
def test_it_refuses_bad_base_urls_readably(alice, base_url, message):
    with pytest.raises(ValidationError, match=message):
        provider_credential_create(owner=alice, name="X", base_url=base_url, model="m")


def test_it_refuses_a_second_provider_with_the_same_name(alice, bob, alice_provider):
    with pytest.raises(ValidationError, match="already have a provider named"):
        provider_credential_create(owner=alice, name="lab vllm", base_url="http://h/v1", model="m")
    provider_credential_create(owner=bob, name="Lab vLLM", base_url="http://h/v1", model="m")  # names are per user


def test_it_updates_a_key_and_explains_one_that_can_no_longer_be_decrypted(alice, alice_provider, settings):
    provider_credential_update(credential=alice_provider, api_key="sk-new-key-abcdefghijkl")
    assert provider_resolve(owner=alice, provider=str(alice_provider.code)).api_key == "sk-new-key-abcdefghijkl"
    settings.SECRET_KEY = "a different secret key"
    with pytest.raises(ReadableError, match="can no longer be read") as error:
        provider_resolve(owner=alice, provider=str(alice_provider.code))
    assert "sk-new" not in str(error.value)


def test_it_reencrypts_saved_keys_after_a_rotation(alice, alice_provider, settings):
    from cryptography.fernet import Fernet

    new_key = Fernet.generate_key()
    settings.GARAGE_ENCRYPTION_KEY = new_key.decode()
    assert provider_credentials_reencrypt() == 1
    alice_provider.refresh_from_db()
    assert Fernet(new_key).decrypt(alice_provider.api_key_encrypted.encode()).decode() == ALICE_KEY


def test_it_tests_a_connection_and_audits_it(alice, alice_provider, chat_server):
    chat_server.script(Reply.text("OK, and here is a secret page"))
    ok, message = provider_credential_test(credential=alice_provider)
    assert ok and "Lab vLLM answered" in message and "HTTP 200" in message
    assert "secret page" not in message  # what the endpoint answered is never shown
    provider_credential_update(credential=alice_provider, api_key="sk-wrong-key-000000000000")
    ok, message = provider_credential_test(credential=alice_provider)
    assert not ok and "refused the API key" in message and "sk-wrong" not in message
    calls = list(ExternalCallAudit.objects.filter(owner=alice).order_by("id"))
    assert [(c.purpose, c.ok, c.status_code, c.provider) for c in calls] == [
        ("test", True, 200, "Lab vLLM"), ("test", False, 401, "Lab vLLM")]
    assert calls[0].characters_sent == len("Reply with the single word OK.") and calls[0].endpoint == chat_server.url
    assert "sk-wrong" not in calls[1].error


def test_it_records_only_ids_in_the_job_config_and_picks_the_queue(alice, extracted_dataset, alice_provider):
    job = qa_generate_start(dataset=extracted_dataset, backend="endpoint", provider=str(alice_provider.code), num_pairs=4)
    assert job.queue == "default" and job.config["provider"] == str(alice_provider.code)
    assert job.config["task_description"] == "Answer questions about the valley" and job.config["scrub_pii"] is True
    assert ALICE_KEY not in json.dumps(job.config) and alice_provider.api_key_encrypted not in json.dumps(job.config)
    local = qa_generate_start(dataset=extracted_dataset, backend="local_model", model_path=TINY_MODEL_ID)
    assert local.queue == "gpu" and local.config["model_path"] == TINY_MODEL_ID
    default = qa_generate_start(dataset=extracted_dataset)
    assert default.config["backend"] == "extractive" and default.queue == "default"


def test_it_refuses_impossible_generation_choices(alice, bob, extracted_dataset, settings, tmp_path):
    bobs = provider_credential_create(owner=bob, name="Bob's", base_url="http://h/v1", model="m", api_key="sk-bob-0000000000")
    with pytest.raises(Http404):
        qa_generate_start(dataset=extracted_dataset, backend="endpoint", provider=str(bobs.code))
    with pytest.raises(ValidationError, match="no default chat endpoint"):
        qa_generate_start(dataset=extracted_dataset, backend="endpoint", provider=SITE_DEFAULT)
    with pytest.raises(ValidationError, match="Unknown generator"):
        qa_generate_start(dataset=extracted_dataset, backend="magic")
    with pytest.raises(ValidationError, match="between 1 and"):
        qa_generate_start(dataset=extracted_dataset, num_pairs=0)
    with pytest.raises(ValidationError, match="model folders of this server"):
        qa_generate_start(dataset=extracted_dataset, backend="local_model", model_path="/etc")
    settings.GARAGE_LOCAL_MODEL_DIRS = [str(tmp_path)]
    job = qa_generate_start(dataset=extracted_dataset, backend="local_model", model_path=str(tmp_path / "gemma"))
    assert job.config["model_path"] == str(tmp_path / "gemma")
    with pytest.raises(ValidationError, match="model folders"):
        qa_generate_start(dataset=extracted_dataset, backend="local_model", model_path=str(tmp_path / ".." / "x"))


def test_it_uses_the_site_default_endpoint_when_one_is_configured(alice, extracted_dataset, settings, chat_server, llm_settings):
    settings.GARAGE_LLM_BASE_URL, settings.GARAGE_LLM_MODEL = chat_server.url, chat_server.model
    settings.GARAGE_LLM_API_KEY = chat_server.api_key = "sk-site-key-1234567890"
    job = qa_generate_start(dataset=extracted_dataset)  # no choice: the configured default
    assert job.config["backend"] == "endpoint" and job.config["provider"] == SITE_DEFAULT
    assert "sk-site" not in json.dumps(job.config)
    result = qa_generate(dataset=extracted_dataset, reporter=RecordingReporter(), options=job.config, job=job)
    assert result["backend"] == "endpoint" and result["pairs"] == 3  # one chunk, three pairs by default
    audit = ExternalCallAudit.objects.get(job=job)
    assert audit.provider == "site default" and audit.credential is None and audit.endpoint == chat_server.url


def test_it_generates_through_a_saved_provider_scrubbing_pii_and_auditing_every_call(
        alice, extracted_dataset, alice_provider, chat_server, llm_settings, caplog):
    pii_pattern_create(owner=alice, label="town", pattern=r"\bEldhavn\b")
    caplog.set_level(logging.DEBUG)
    job = qa_generate_start(dataset=extracted_dataset, backend="endpoint", provider=str(alice_provider.code),
                            num_pairs=2, summary="Ask the mayor at mayor@eldhavn.example")
    reporter = RecordingReporter()
    result = qa_generate(dataset=extracted_dataset, reporter=reporter, options=job.config, job=job)

    pairs = list(extracted_dataset.pairs.all())
    assert len(pairs) == 2 and all(p.source == QAPair.Source.ENDPOINT and p.chunk and p.document for p in pairs)
    [request] = chat_server.chat_requests
    sent = request.text
    for private in ("mayor@eldhavn.example", "7946 0958", "4111 1111", "Eldhavn"):
        assert private not in sent
    assert "[EMAIL]" in sent and "[PHONE]" in sent and "[CARD]" in sent and "[TOWN]" in sent
    assert request.headers["authorization"] == f"Bearer {ALICE_KEY}" and ALICE_KEY.encode() not in request.raw

    [audit] = ExternalCallAudit.objects.filter(owner=alice)
    assert audit.job == job and audit.credential == alice_provider and audit.purpose == "generate" and audit.ok
    assert audit.characters_sent == len(request.messages[0]["content"]) + len(request.messages[1]["content"])
    assert audit.pii_replacements == 5 and audit.attempts == 1 and audit.model == chat_server.model
    assert result == {"pairs": 2, "chunks": 1, "backend": "endpoint", "requested": 2, "malformed": 0, "failed_chunks": 0,
                      "pii_replacements": 5, "external_calls": 1, "characters_sent": audit.characters_sent, "kept_by_hand": 0}
    assert ALICE_KEY not in caplog.text and all(ALICE_KEY not in line for line in reporter.lines)


def test_it_keeps_earlier_pairs_when_a_run_makes_none(alice, extracted_dataset, alice_provider, chat_server, llm_settings):
    qa_generate(dataset=extracted_dataset, reporter=RecordingReporter())
    before = set(extracted_dataset.pairs.values_list("question", flat=True))
    assert before
    chat_server.responder = lambda request: Reply.text("I would rather not.")
    job = qa_generate_start(dataset=extracted_dataset, backend="endpoint", provider=str(alice_provider.code))
    with pytest.raises(ReadableError, match="none of the model.s answers could be read"):
        qa_generate(dataset=extracted_dataset, reporter=RecordingReporter(), options=job.config, job=job)
    assert set(extracted_dataset.pairs.values_list("question", flat=True)) == before


def test_it_fails_readably_without_the_key_when_the_endpoint_refuses_it(alice, extracted_dataset, alice_provider,
                                                                        chat_server, llm_settings, caplog):
    chat_server.api_key = "sk-something-else-entirely"
    job = qa_generate_start(dataset=extracted_dataset, backend="endpoint", provider=str(alice_provider.code))
    with pytest.raises(ReadableError, match="refused the API key") as error:
        qa_generate(dataset=extracted_dataset, reporter=RecordingReporter(), options=job.config, job=job)
    assert ALICE_KEY not in str(error.value) and ALICE_KEY not in caplog.text
    audit = ExternalCallAudit.objects.get(job=job)
    assert not audit.ok and audit.status_code == 401 and ALICE_KEY not in audit.error

