"""Connecting a Hugging Face account: OAuth (state, PKCE, refresh) and pasted tokens, against the local Hub."""
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.core.crypto import decrypt
from apps.hub.models import HubConnection
from apps.hub.connections import ReconnectRequired, hub_connection_token
from tests.fakes.hub_publish_server import CLIENT_ID
from tests.hub.conftest import ALICE_HF

pytestmark = pytest.mark.django_db


def _authorize(client, hub):
    """Start the sign-in from the page and let the local Hub answer the authorization request, as a browser would.
    Returns the callback path (with its query) the Hub redirects back to."""
    start = client.get("/hub/connect/")
    assert start.status_code == 302 and start["Location"].startswith(f"{hub.url}/oauth/authorize?")
    answer = httpx.get(start["Location"], follow_redirects=False)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert (back.scheme, back.netloc, back.path) == ("http", "testserver", "/hub/callback/")
    return f"{back.path}?{back.query}"


def _oauth_connect(client, hub):
    callback = _authorize(client, hub)
    response = client.get(callback)
    assert response.status_code == 302 and response["Location"] == "/hub/"
    return HubConnection.objects.get()


def test_it_connects_with_oauth_checking_state_and_pkce(alice_client, alice, hub, caplog):
    caplog.set_level(logging.DEBUG)
    callback = _authorize(alice_client, hub)
    sent = hub.authorize_requests[-1]
    assert sent["client_id"] == CLIENT_ID and sent["response_type"] == "code"
    assert sent["scope"] == "openid profile write-repos manage-repos"
    assert sent["redirect_uri"] == "http://testserver/hub/callback/"
    assert len(sent["state"]) >= 32 and sent["code_challenge_method"] == "S256"
    assert parse_qs(urlsplit(callback).query)["state"] == [sent["state"]]
    assert alice_client.get(callback).status_code == 302
    connection = HubConnection.objects.get(owner=alice)
    assert connection.method == "oauth" and connection.username == ALICE_HF and connection.endpoint == hub.url
    access = decrypt(connection.access_token_encrypted)
    assert hub.tokens[access]["user"] == ALICE_HF  # the token the Hub issued, stored encrypted only
    assert access not in connection.access_token_encrypted and decrypt(connection.refresh_token_encrypted) in hub.refresh_tokens
    assert timezone.now() + timedelta(minutes=50) < connection.expires_at < timezone.now() + timedelta(minutes=70)
    page = alice_client.get("/hub/").content.decode()
    assert f"Connected as <b>{ALICE_HF}</b>" in page and access not in page
    refresh = decrypt(connection.refresh_token_encrypted)
    assert access not in caplog.text and refresh not in caplog.text
    # The same callback again (a replay) is refused: the state was used once.
    replay = alice_client.get(callback)
    assert replay.status_code == 400 and "already used" in replay.content.decode()


def test_it_rejects_a_callback_whose_state_is_missing_or_not_its_own(alice_client, bob_client, alice, hub):
    callback = _authorize(alice_client, hub)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    for query in (f"code={code}", f"code={code}&state=forged-state"):
        response = alice_client.get(f"/hub/callback/?{query}")
        page = response.content.decode()
        assert response.status_code == 400 and "state does not match" in page and "Nothing was connected" in page
    # Bob's browser cannot finish Alice's sign-in: the state lives in Alice's session.
    assert bob_client.get(callback).status_code == 400
    assert not HubConnection.objects.exists()
    assert "POST /oauth/token" not in hub.requests  # no code was ever exchanged


def test_it_says_so_when_the_user_declines(alice_client, hub):
    callback = _authorize(alice_client, hub)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    response = alice_client.get(f"/hub/callback/?error=access_denied&state={state}")
    assert response.status_code == 400 and "you declined" in response.content.decode()
    assert not HubConnection.objects.exists()


def test_it_refreshes_an_expired_token_with_the_refresh_token(alice_client, hub):
    connection = _oauth_connect(alice_client, hub)
    old_access, old_refresh = decrypt(connection.access_token_encrypted), decrypt(connection.refresh_token_encrypted)
    hub.expire(old_access)
    HubConnection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(seconds=5))
    connection.refresh_from_db()
    token = hub_connection_token(connection=connection)
    connection.refresh_from_db()
    assert token != old_access and decrypt(connection.access_token_encrypted) == token
    assert decrypt(connection.refresh_token_encrypted) != old_refresh and connection.expires_at > timezone.now()
    # The page lists the repositories with the new token.
    hub.add_repo(f"{ALICE_HF}/earlier-model")
    assert f"{ALICE_HF}/earlier-model" in alice_client.get("/hub/").content.decode()


def test_it_asks_to_connect_again_when_the_refresh_fails(alice_client, hub):
    connection = _oauth_connect(alice_client, hub)
    hub.revoke_refresh_tokens()
    HubConnection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(seconds=5))
    connection.refresh_from_db()
    with pytest.raises(ReconnectRequired, match="Connect your account again"):
        hub_connection_token(connection=connection)
    connection.refresh_from_db()
    assert connection.needs_reconnect and not connection.access_token_encrypted and not connection.refresh_token_encrypted
    page = alice_client.get("/hub/").content.decode()
    assert "has expired and could not be renewed" in page and "Connect again" in page


def test_it_connects_with_a_pasted_token_and_never_shows_it(alice_client, alice, hub):
    response = alice_client.post("/hub/token/", {"token": hub.alice_token})
    assert response.status_code == 302
    connection = HubConnection.objects.get(owner=alice)
    assert connection.method == "token" and connection.username == ALICE_HF
    assert decrypt(connection.access_token_encrypted) == hub.alice_token and connection.token_hint == hub.alice_token[-4:]
    page = alice_client.get("/hub/").content.decode()
    assert f"…{hub.alice_token[-4:]}" in page and hub.alice_token not in page and hub.alice_token[:-4] not in page
    assert connection.access_token_encrypted not in page


def test_it_refuses_bad_and_read_only_tokens_readably(alice_client, hub):
    read_only = hub.add_user("reader", role="read")
    for token, message in (("hf_not-a-real-token-0000", "did not accept this token"), (read_only, "can only read"),
                           ("two words", "contains spaces"), ("hf_tökén", "characters that tokens never have")):
        response = alice_client.post("/hub/token/", {"token": token})
        page = response.content.decode()
        assert response.status_code == 400 and message in page, token
        assert token not in page  # the form never echoes the token back
    assert not HubConnection.objects.exists()


def test_it_says_when_the_hub_cannot_be_reached(alice_client, hub, settings):
    from tests.live import free_port

    settings.HF_ENDPOINT = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    response = alice_client.post("/hub/token/", {"token": hub.alice_token})
    assert response.status_code == 400 and "network seems to be down" in response.content.decode()


def test_it_disconnects_and_deletes_the_tokens(alice_client, alice_connected):
    assert alice_client.post("/hub/disconnect/").status_code == 302
    assert not HubConnection.objects.exists()
    assert "No account connected yet" in alice_client.get("/hub/").content.decode()


def test_it_lists_the_accounts_repositories(alice_client, alice_connected, hub):
    hub.add_repo(f"{ALICE_HF}/public-one")
    hub.add_repo(f"{ALICE_HF}/secret-one", private=True)
    hub.add_repo("someone-else/theirs")
    page = alice_client.get("/hub/").content.decode()
    assert f"{ALICE_HF}/public-one" in page and f"{ALICE_HF}/secret-one" in page and "someone-else/theirs" not in page
    assert "GET /api/models" in hub.requests


def test_it_shows_bob_nothing_of_alices_connection(alice_connected, bob_client, bob_api, hub):
    hub.add_repo(f"{ALICE_HF}/secret-one", private=True)
    page = bob_client.get("/hub/").content.decode()
    assert ALICE_HF not in page and "No account connected yet" in page
    status = bob_api.get("/api/v1/hub/connection/").json()
    assert status["connected"] is False and status["username"] == ""
    assert bob_api.get("/api/v1/hub/repos/").status_code == 409
    assert bob_client.post("/hub/disconnect/").status_code == 302
    assert HubConnection.objects.filter(pk=alice_connected.pk).exists()  # Bob's disconnect touched only his own


def test_it_connects_through_the_api(alice_api, alice, hub):
    response = alice_api.post("/api/v1/hub/connection/token/", {"token": hub.alice_token}, format="json")
    body = response.json()
    assert response.status_code == 201 and body["connected"] and body["username"] == ALICE_HF
    assert body["token"] == f"…{hub.alice_token[-4:]}" and hub.alice_token not in response.content.decode()
    bad = alice_api.post("/api/v1/hub/connection/token/", {"token": "hf_wrong-token-1234567"}, format="json")
    assert bad.status_code == 400 and "did not accept this token" in bad.json()["message"]
    hub.add_repo(f"{ALICE_HF}/one", private=True)
    repos = alice_api.get("/api/v1/hub/repos/").json()
    assert [(r["id"], r["private"]) for r in repos] == [(f"{ALICE_HF}/one", True)]
    status = alice_api.get("/api/v1/hub/connection/").json()
    assert status["connected"] and status["method"] == "token" and status["endpoint"] == hub.url
    assert alice_api.delete("/api/v1/hub/connection/").status_code == 204
    assert not HubConnection.objects.exists()


def test_it_shows_connections_in_the_admin_without_their_tokens(client, alice_client, alice_connected, hub):
    _oauth_connect(alice_client, hub)  # replaces the pasted token with OAuth tokens
    oauth = HubConnection.objects.get()
    client.force_login(User.objects.create_superuser(email="root@example.com", password="an admin passphrase"))
    secrets = [decrypt(oauth.access_token_encrypted), decrypt(oauth.refresh_token_encrypted),
               oauth.access_token_encrypted, oauth.refresh_token_encrypted, hub.alice_token]
    for url in ["/admin/hub/hubconnection/", f"/admin/hub/hubconnection/{oauth.pk}/change/"]:
        page = client.get(url).content.decode()
        assert ALICE_HF in page and "OAuth token" in page, url
        assert not [secret for secret in secrets if secret in page], url


def test_it_documents_the_hub_endpoints_in_the_schema(alice_api):
    paths = alice_api.get("/api/v1/schema/", {"format": "json"}).json()["paths"]
    for path in ("/api/v1/hub/connection/", "/api/v1/hub/connection/token/", "/api/v1/hub/repos/",
                 "/api/v1/hub/pushes/", "/api/v1/hub/pushes/{code}/", "/api/v1/hub/gate/{code}/",
                 "/api/v1/hub/preferences/"):
        assert path in paths, path
