"""The Providers pages and the generation form, with the owner (alice) and a stranger (bob)."""
import pytest
from django.urls import reverse

from apps.core.models import Job
from apps.providers.models import ExternalCallAudit, PiiPattern, ProviderCredential
from apps.providers.services import pii_pattern_create
from tests.fakes.chat_server import Reply
from tests.providers.conftest import ALICE_KEY

pytestmark = pytest.mark.django_db


def test_it_saves_a_provider_and_never_shows_its_key_again(alice_client, alice, chat_server):
    response = alice_client.post(reverse("providers:list"), {
        "name": "Lab vLLM", "base_url": chat_server.url, "model": "fake-model", "api_key": ALICE_KEY})
    assert response.status_code == 302
    credential = ProviderCredential.objects.get(owner=alice)
    page = alice_client.get(reverse("providers:list")).content.decode()
    assert "Lab vLLM" in page and f"…{ALICE_KEY[-4:]}" in page
    assert ALICE_KEY not in page and ALICE_KEY[:-4] not in page and credential.api_key_encrypted not in page


def test_it_shows_form_errors_without_echoing_the_key(alice_client, alice):
    response = alice_client.post(reverse("providers:list"), {
        "name": "Bad", "base_url": "http://user:pw@host/v1", "model": "m", "api_key": ALICE_KEY})
    page = response.content.decode()
    assert response.status_code == 400 and "not inside the URL" in page and ALICE_KEY not in page
    assert not ProviderCredential.objects.exists()


def test_it_tests_a_connection_from_the_page(alice_client, alice_provider, chat_server):
    chat_server.script(Reply.text("OK"))
    response = alice_client.post(reverse("providers:test", args=[alice_provider.code]), follow=True)
    page = response.content.decode()
    assert "Lab vLLM answered" in page and ALICE_KEY not in page
    assert ExternalCallAudit.objects.filter(owner=alice_provider.owner, purpose="test", ok=True).count() == 1
    assert "Test connection" in page and "fake-model" in page  # the recent calls table


def test_it_manages_privacy_patterns(alice_client, alice):
    response = alice_client.post(reverse("providers:pattern_create"), {"label": "case id", "pattern": r"CASE-\d+"})
    assert response.status_code == 302
    pattern = PiiPattern.objects.get(owner=alice)
    assert pattern.label == "CASE_ID" and "[CASE_ID]" in alice_client.get(reverse("providers:list")).content.decode()
    bad = alice_client.post(reverse("providers:pattern_create"), {"label": "x", "pattern": "(oops"})
    assert bad.status_code == 400 and "not a valid regular expression" in bad.content.decode()
    assert alice_client.post(reverse("providers:pattern_delete", args=[pattern.code])).status_code == 302
    assert not PiiPattern.objects.exists()


def test_it_answers_404_to_strangers(client, bob, alice, alice_provider):
    pattern = pii_pattern_create(owner=alice, label="X", pattern="xyz")
    client.force_login(bob)
    for url in [reverse("providers:delete", args=[alice_provider.code]), reverse("providers:test", args=[alice_provider.code]),
                reverse("providers:pattern_delete", args=[pattern.code])]:
        assert client.post(url).status_code == 404, url
    page = client.get(reverse("providers:list")).content.decode()
    assert "Lab vLLM" not in page and "xyz" not in page
    assert ProviderCredential.objects.filter(pk=alice_provider.pk).exists() and PiiPattern.objects.filter(pk=pattern.pk).exists()


def test_it_deletes_a_provider_for_its_owner(alice_client, alice_provider):
    assert alice_client.post(reverse("providers:delete", args=[alice_provider.code])).status_code == 302
    assert not ProviderCredential.objects.exists()


def test_it_lists_only_the_users_own_external_calls(alice_client, client, bob, alice_provider, chat_server):
    chat_server.script(Reply.text("OK"))
    alice_client.post(reverse("providers:test", args=[alice_provider.code]))
    assert chat_server.url in alice_client.get(reverse("providers:audit")).content.decode()
    client.force_login(bob)
    page = client.get(reverse("providers:audit")).content.decode()
    assert chat_server.url not in page and "No text of yours" in page


def test_it_renders_the_generation_form_with_the_users_providers_only(alice, bob, extracted_dataset, alice_provider):
    from django.template import RequestContext, Template
    from django.test import RequestFactory

    from apps.providers.services import provider_credential_create

    provider_credential_create(owner=bob, name="Bob's endpoint", base_url="http://h/v1", model="m")
    request = RequestFactory().get("/")
    request.user = alice
    html = Template('{% include "datasets/_generate_form.html" %}').render(RequestContext(request, {"dataset": extracted_dataset}))
    assert f'value="provider:{alice_provider.code}"' in html and "Bob&#x27;s endpoint" not in html
    assert 'name="scrub_pii"' in html and "checked" in html and "Answer questions about the valley" in html
    assert reverse("datasets:generate", args=[extracted_dataset.code]) in html


def test_it_starts_generation_from_the_form(alice_client, extracted_dataset, alice_provider):
    response = alice_client.post(reverse("datasets:generate", args=[extracted_dataset.code]), {
        "generator": f"provider:{alice_provider.code}", "task_description": "Quiz me", "num_pairs": "7", "scrub_pii": "on"})
    job = Job.objects.get(kind=Job.Kind.GENERATE)
    assert response.status_code == 302 and response.url == reverse("jobs:detail", args=[job.code])
    assert {k: job.config[k] for k in ("backend", "provider", "task_description", "num_pairs", "scrub_pii")} == {
        "backend": "endpoint", "provider": str(alice_provider.code), "task_description": "Quiz me", "num_pairs": 7,
        "scrub_pii": True}
    local = alice_client.post(reverse("datasets:generate", args=[extracted_dataset.code]),
                              {"generator": "local", "model_path": "", "num_pairs": "3"}, follow=True)
    assert "Give the local model" in local.content.decode() and Job.objects.filter(kind=Job.Kind.GENERATE).count() == 1
    bare = alice_client.post(reverse("datasets:generate", args=[extracted_dataset.code]))
    assert bare.status_code == 302 and Job.objects.filter(kind=Job.Kind.GENERATE).latest("id").config["backend"] == "extractive"


def test_it_answers_404_when_the_form_names_a_strangers_provider(client, bob, extracted_dataset, alice_provider):
    from apps.datasets.services import dataset_create

    bobs_dataset = dataset_create(owner=bob, name="Bob's")
    client.force_login(bob)
    response = client.post(reverse("datasets:generate", args=[bobs_dataset.code]),
                           {"generator": f"provider:{alice_provider.code}"})
    assert response.status_code == 404 and not Job.objects.filter(kind=Job.Kind.GENERATE).exists()


def test_it_offers_the_generation_options_on_the_dataset_page_without_the_key(alice_client, extracted_dataset, alice_provider):
    page = alice_client.get(reverse("datasets:detail", args=[extracted_dataset.code])).content.decode()
    assert 'name="generator"' in page and f"provider:{alice_provider.code}" in page and "Lab vLLM" in page
    assert ALICE_KEY not in page and alice_provider.api_key_encrypted not in page
