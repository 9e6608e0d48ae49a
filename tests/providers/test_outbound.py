"""Where saved endpoints may point, and where their keys may go: the address guard when a URL is saved, tested or
used, and the key asked for again when the URL moves to another origin. Owner (alice) and stranger (bob)."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.accounts.models import User
from apps.core.crypto import decrypt
from apps.providers.client import provider_resolve
from apps.providers.models import ExternalCallAudit, ProviderCredential
from apps.providers.services import (
    KEY_AGAIN_MESSAGE,
    provider_credential_create,
    provider_credential_test,
    provider_credential_update,
)
from tests.fakes.chat_server import Reply
from tests.providers.conftest import ALICE_KEY

pytestmark = pytest.mark.django_db

FORBIDDEN = ["http://169.254.169.254/latest/meta-data", "http://127.0.0.1:8000/v1", "http://[::1]:11434/v1",
             "http://10.0.0.1/v1", "http://[::ffff:127.0.0.1]:8000/v1", "http://0.0.0.0:8000/v1",
             "http://2130706433:8000/v1", "http://localhost:11434/v1"]
HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def no_allowed(settings):
    """A server whose administrator allows no private address (the default outside `garage run`)."""
    settings.GARAGE_ALLOWED_ENDPOINTS = []
    return settings


def _elsewhere(url: str) -> str:
    """The same server under another name: another origin, which the saved key must not follow silently."""
    return url.replace("127.0.0.1", "localhost")


# ------------------------------------------------------------------------------------------ the address guard

@pytest.mark.parametrize("url", FORBIDDEN)
def test_it_refuses_to_save_a_url_that_leads_to_a_private_address(alice, no_allowed, url):
    with pytest.raises(ValidationError, match="GARAGE_ALLOWED_ENDPOINTS"):
        provider_credential_create(owner=alice, name="Sneaky", base_url=url, model="m")
    assert not ProviderCredential.objects.exists()


def test_it_refuses_to_move_a_saved_url_to_a_private_address(alice, alice_provider, no_allowed):
    with pytest.raises(ValidationError, match="GARAGE_ALLOWED_ENDPOINTS"):
        provider_credential_update(credential=alice_provider, base_url="http://169.254.169.254/v1", api_key="")
    alice_provider.refresh_from_db()
    assert alice_provider.base_url != "http://169.254.169.254/v1"


def test_it_saves_private_addresses_the_administrator_allows(alice, settings):
    settings.GARAGE_ALLOWED_ENDPOINTS = ["10.0.0.0/8"]
    assert provider_credential_create(owner=alice, name="Lab", base_url="http://10.1.2.3:8000/v1", model="m")
    with pytest.raises(ValidationError, match="GARAGE_ALLOWED_ENDPOINTS"):
        provider_credential_create(owner=alice, name="Metadata", base_url="http://169.254.169.254/v1", model="m")


def test_it_refuses_the_connection_test_once_the_address_is_no_longer_allowed(alice_provider, chat_server, no_allowed):
    ok, message = provider_credential_test(credential=alice_provider)
    assert not ok and "loopback" in message and "GARAGE_ALLOWED_ENDPOINTS" in message
    assert chat_server.chat_requests == []  # the check comes before any byte is sent


def test_it_guards_the_client_every_feature_gets(alice, alice_provider, chat_server, no_allowed):
    # Generation, the curation and held-out judges, GRPO judges and prompt optimization all get their client here.
    endpoint = provider_resolve(owner=alice, provider=str(alice_provider.code))
    with endpoint.client(max_retries=2) as client:
        result = client.call(HELLO)
    assert not result.ok and result.attempts == 1 and "GARAGE_ALLOWED_ENDPOINTS" in result.error
    assert chat_server.chat_requests == []


def test_it_trusts_the_site_default_endpoint_set_by_the_administrator(alice, chat_server, no_allowed):
    no_allowed.GARAGE_LLM_BASE_URL, no_allowed.GARAGE_LLM_MODEL = chat_server.url, chat_server.model
    chat_server.script(Reply.text("Hello."))
    with provider_resolve(owner=alice, provider="default").client() as client:
        assert client.complete(HELLO) == "Hello."


def test_it_never_shows_what_the_endpoint_answered(alice_provider, chat_server):
    chat_server.script(Reply.status(500, "<html>internal admin page: db password hunter2</html>"))
    ok, message = provider_credential_test(credential=alice_provider)
    assert not ok and "server error (500)" in message and "hunter2" not in message and "admin page" not in message
    chat_server.script(Reply.status(400, "hunter2"), Reply(status_code=418, body="hunter2"))
    for _ in range(2):
        ok, message = provider_credential_test(credential=alice_provider)
        assert not ok and "hunter2" not in message
    assert all("hunter2" not in call.error for call in ExternalCallAudit.objects.all())


def test_it_refuses_private_addresses_through_the_api(alice_api, no_allowed):
    response = alice_api.post("/api/v1/providers/", {"name": "Meta", "base_url": "http://169.254.169.254/v1",
                                                     "model": "m"}, format="json")
    assert response.status_code == 400 and "GARAGE_ALLOWED_ENDPOINTS" in response.json()["message"]


def test_it_refuses_private_addresses_on_the_page(alice_client, no_allowed):
    response = alice_client.post(reverse("providers:list"), {"name": "Meta", "base_url": "http://[::1]:8000/v1",
                                                             "model": "m", "api_key": ALICE_KEY})
    page = response.content.decode()
    assert response.status_code == 400 and "GARAGE_ALLOWED_ENDPOINTS" in page and ALICE_KEY not in page
    assert not ProviderCredential.objects.exists()


def test_it_says_on_the_page_why_a_connection_test_was_refused(alice_client, alice_provider, chat_server, no_allowed):
    response = alice_client.post(reverse("providers:test", args=[alice_provider.code]), follow=True)
    assert "GARAGE_ALLOWED_ENDPOINTS" in response.content.decode() and chat_server.chat_requests == []


# ------------------------------------------------------------------------------- the key follows no new origin

def test_it_asks_for_the_key_again_when_the_url_moves_to_another_origin(alice_provider, chat_server):
    before = alice_provider.base_url
    for url in [_elsewhere(before), before.replace("http://", "https://"), "http://127.0.0.1:9/v1"]:
        with pytest.raises(ValidationError) as refused:
            provider_credential_update(credential=alice_provider, base_url=url)
        assert refused.value.messages == [KEY_AGAIN_MESSAGE], url
        alice_provider.refresh_from_db()
        assert alice_provider.base_url == before and decrypt(alice_provider.api_key_encrypted) == ALICE_KEY
    # The test request never went anywhere else with the key.
    assert chat_server.chat_requests == []


def test_it_keeps_the_key_on_the_same_origin_and_takes_it_again_for_a_new_one(alice_provider, chat_server):
    moved = provider_credential_update(credential=alice_provider, base_url=alice_provider.base_url + "/")
    assert decrypt(moved.api_key_encrypted) == ALICE_KEY  # same scheme, host and port: the key stays
    elsewhere = provider_credential_update(credential=alice_provider, base_url=_elsewhere(alice_provider.base_url),
                                           api_key=ALICE_KEY)
    assert elsewhere.base_url.startswith("http://localhost:") and decrypt(elsewhere.api_key_encrypted) == ALICE_KEY
    ok, _ = provider_credential_test(credential=elsewhere)
    assert ok and chat_server.chat_requests[-1].headers["authorization"] == f"Bearer {ALICE_KEY}"
    keyless = provider_credential_update(credential=elsewhere, base_url=chat_server.url, api_key="")
    assert not keyless.has_key
    assert provider_credential_update(credential=keyless, base_url=_elsewhere(keyless.base_url)).base_url.startswith(
        "http://localhost:")  # nothing to protect without a key


def test_it_asks_for_the_key_again_through_the_api(alice_api, bob_api, alice_provider, chat_server):
    url = f"/api/v1/providers/{alice_provider.code}/"
    other = _elsewhere(alice_provider.base_url)
    refused = alice_api.patch(url, {"base_url": other}, format="json")
    assert refused.status_code == 400 and refused.json()["message"] == KEY_AGAIN_MESSAGE
    assert bob_api.patch(url, {"base_url": other, "api_key": "sk-bob-000000000000"}, format="json").status_code == 404
    alice_provider.refresh_from_db()
    assert alice_provider.base_url == chat_server.url and decrypt(alice_provider.api_key_encrypted) == ALICE_KEY
    accepted = alice_api.patch(url, {"base_url": other, "api_key": ALICE_KEY}, format="json")
    assert accepted.status_code == 200 and accepted.json()["base_url"] == other


def test_it_does_not_let_the_admin_move_a_saved_key_elsewhere(client, alice_provider):
    client.force_login(User.objects.create_superuser(email="root@example.com", password="an admin passphrase"))
    url = f"/admin/providers/providercredential/{alice_provider.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="base_url"' not in page and alice_provider.base_url in page  # shown, not editable
    response = client.post(url, {"name": "Renamed", "base_url": "https://attacker.example/v1", "model": "m"})
    assert response.status_code == 302
    alice_provider.refresh_from_db()
    assert alice_provider.name == "Renamed" and alice_provider.base_url.startswith("http://127.0.0.1:")
