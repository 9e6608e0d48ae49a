import pytest
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create, api_token_revoke
from tests.factories import ApiTokenFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
TOKENS = "/api/v1/tokens/"


def bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_it_returns_the_current_user(alice_api, alice):
    response = alice_api.get(ME)
    assert response.status_code == 200
    assert response.json() == {"id": alice.pk, "email": "alice@example.com", "date_joined": response.json()["date_joined"]}


def test_it_answers_401_to_anonymous_requests():
    response = APIClient().get(ME)
    assert response.status_code == 401 and response.json()["message"]


def test_it_authenticates_with_an_api_token(alice):
    token, secret = api_token_create(user=alice, name="script")
    response = bearer(secret).get(ME)
    assert response.status_code == 200 and response.json()["email"] == "alice@example.com"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_it_rejects_a_revoked_token(alice):
    token, secret = api_token_create(user=alice, name="script")
    api_token_revoke(token=token)
    response = bearer(secret).get(ME)
    assert response.status_code == 401
    assert response.json()["message"] == "This API token is not valid: it was revoked or mistyped."
    assert secret not in response.content.decode()


def test_it_rejects_a_token_of_a_disabled_account(alice):
    _, secret = api_token_create(user=alice, name="script")
    alice.is_active = False
    alice.save()
    assert bearer(secret).get(ME).status_code == 401


def test_it_creates_a_token_and_returns_its_secret_once(alice_api, alice):
    response = alice_api.post(TOKENS, {"name": "CI"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "CI" and body["token"].startswith("gg_") and body["token"].startswith(body["prefix"])
    assert bearer(body["token"]).get(ME).json()["email"] == "alice@example.com"

    listed = alice_api.get(TOKENS).json()["results"]
    assert [t["code"] for t in listed] == [body["code"]] and "token" not in listed[0]
    detail = alice_api.get(f"{TOKENS}{body['code']}/").json()
    assert "token" not in detail and body["token"] not in str(detail)


def test_it_asks_for_a_token_name_in_the_api(alice_api):
    response = alice_api.post(TOKENS, {"name": " "}, format="json")
    assert response.status_code == 400 and response.json()["message"]
    assert not ApiToken.objects.exists()


def test_it_deletes_a_token(alice_api, alice):
    token = ApiTokenFactory(owner=alice)
    assert alice_api.delete(f"{TOKENS}{token.code}/").status_code == 204
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_it_lists_only_the_users_own_tokens(alice, bob_api):
    ApiTokenFactory(owner=alice)
    assert bob_api.get(TOKENS).json()["results"] == []


@pytest.mark.parametrize("method", ["get", "delete"])
def test_it_answers_404_when_bob_touches_alices_token(alice, bob_api, method):
    token = ApiTokenFactory(owner=alice)
    response = getattr(bob_api, method)(f"{TOKENS}{token.code}/")
    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_it_answers_404_to_charlie_signed_in_with_his_own_token(alice, charlie):
    token = ApiTokenFactory(owner=alice)
    _, secret = api_token_create(user=charlie, name="charlie's")
    client = bearer(secret)
    assert client.delete(f"{TOKENS}{token.code}/").status_code == 404
    assert [t["name"] for t in client.get(TOKENS).json()["results"]] == ["charlie's"]


def test_it_answers_404_to_a_malformed_token_code(alice_api):
    assert alice_api.get(f"{TOKENS}not-a-uuid/").status_code == 404
