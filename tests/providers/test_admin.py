import pytest

from apps.accounts.models import User
from apps.providers.models import ExternalCallAudit
from apps.providers.services import provider_credential_test
from tests.fakes.chat_server import Reply
from tests.providers.conftest import ALICE_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser(email="root@example.com", password="an admin passphrase"))
    return client


def test_it_shows_providers_in_the_admin_without_their_keys(admin_client, alice_provider):
    for url in ["/admin/providers/providercredential/", f"/admin/providers/providercredential/{alice_provider.pk}/change/"]:
        page = admin_client.get(url).content.decode()
        assert "Lab vLLM" in page and f"…{ALICE_KEY[-4:]}" in page, url
        assert ALICE_KEY not in page and alice_provider.api_key_encrypted not in page, url


def test_it_shows_the_audit_log_read_only_in_the_admin(admin_client, alice_provider, chat_server):
    chat_server.script(Reply.text("OK"))
    provider_credential_test(credential=alice_provider)
    audit = ExternalCallAudit.objects.get()
    page = admin_client.get("/admin/providers/externalcallaudit/").content.decode()
    assert chat_server.url in page and "alice@example.com" in page
    assert admin_client.get(f"/admin/providers/externalcallaudit/{audit.pk}/change/").status_code == 200
    response = admin_client.post(f"/admin/providers/externalcallaudit/{audit.pk}/change/", {"characters_sent": 0})
    assert response.status_code == 403
    audit.refresh_from_db()
    assert audit.characters_sent > 0
