import time

import firebase_admin
import firebase_admin._user_mgt
import google.auth.exceptions
import google.oauth2.id_token
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.context_processors import firebase as firebase_context
from apps.accounts.firebase import APP_NAME
from apps.accounts.models import User
from apps.accounts.checks import firebase_credentials
from apps.accounts.services import FirebaseSignInError, api_token_create, user_from_firebase_token
from tests.accounts.conftest import FIREBASE_PROJECT, GOOGLE_CERTS_URL, emulator_token
from tests.live import free_port

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"


def bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- emulator mode: unsigned tokens, no network -------------------------------------------------

def test_it_accepts_unsigned_tokens_in_emulator_mode(firebase_emulator, network_attempts):
    user = user_from_firebase_token(id_token=emulator_token(uid="emu-1", email="Emu@Example.com"))
    assert user.email == "emu@example.com" and user.firebase_uid == "emu-1"
    assert not user.has_usable_password()
    assert network_attempts == []
    assert [lookup["uid"] for lookup in firebase_emulator.lookups] == ["emu-1"]  # the emulator was asked


def test_it_refuses_a_revoked_token_in_emulator_mode(firebase_emulator):
    token = emulator_token(uid="emu-3", email="emu3@example.com")
    firebase_emulator.revoke("emu-3")
    response = bearer(token).get(ME)
    assert response.status_code == 401 and response.json()["message"] == "This Firebase sign-in was revoked. Sign in again."


def test_it_rejects_emulator_tokens_of_another_project(firebase_emulator):
    with pytest.raises(FirebaseSignInError, match="issued for another Firebase project"):
        user_from_firebase_token(id_token=emulator_token(project="someone-elses-project"))
    assert not User.objects.exists()


def test_it_authenticates_the_api_with_an_emulator_token(firebase_emulator):
    response = bearer(emulator_token(uid="emu-2", email="emu2@example.com")).get(ME)
    assert response.status_code == 200 and response.json()["email"] == "emu2@example.com"


# --- real RS256 tokens checked against a local certificate ---------------------------------------

def test_it_accepts_a_token_signed_by_google(google_certs, google_key, service_account, network_attempts):
    response = bearer(google_key.sign(uid="uid-dana", email="dana@example.com")).get(ME)
    assert response.status_code == 200 and response.json()["email"] == "dana@example.com"
    assert google_certs == [GOOGLE_CERTS_URL]
    assert network_attempts == []
    # Revocation was checked with the service account's access token.
    assert service_account.lookups == [{"uid": "uid-dana", "authorization": f"Bearer {service_account.ACCESS_TOKEN}"}]


def test_it_refuses_a_revoked_token(google_certs, google_key, service_account, alice):
    alice.firebase_uid = "uid-alice"
    alice.save()
    token = google_key.sign(uid="uid-alice", email="alice@example.com")
    assert bearer(token).get(ME).status_code == 200
    service_account.revoke("uid-alice")  # a password change, or "sign out everywhere"
    response = bearer(token).get(ME)
    assert response.status_code == 401 and response.json()["message"] == "This Firebase sign-in was revoked. Sign in again."
    # A token issued after the revocation works again.
    time.sleep(max(0, service_account.revoked_at["uid-alice"] - time.time()) + 0.1)
    fresh = google_key.sign(uid="uid-alice", email="alice@example.com", iat=int(time.time()), auth_time=int(time.time()))
    assert bearer(fresh).get(ME).status_code == 200


@pytest.mark.parametrize("state, message", [
    ("disabled", "Your Firebase account is disabled."),
    ("deleted", "Your Firebase account no longer exists."),
])
def test_it_refuses_tokens_of_disabled_and_deleted_firebase_users(google_certs, google_key, service_account, state,
                                                                   message):
    getattr(service_account, state).add("uid-dana")
    response = bearer(google_key.sign(uid="uid-dana", email="dana@example.com")).get(ME)
    assert response.status_code == 401 and response.json()["message"] == message
    assert not User.objects.exists()


def test_it_answers_503_when_revocation_cannot_be_checked(google_certs, google_key, monkeypatch):
    monkeypatch.setattr(firebase_admin._user_mgt.UserManager, "ID_TOOLKIT_URL", f"http://127.0.0.1:{free_port()}/v1")
    response = bearer(google_key.sign()).get(ME)
    assert response.status_code == 503 and "Try again" in response.json()["message"]
    assert not User.objects.exists()


def test_it_refuses_firebase_sign_in_without_a_service_account(google_certs, google_key, settings, network_attempts):
    """Without one, revoked tokens could not be recognised: sign-in is refused, and the system check says why."""
    settings.FIREBASE_CREDENTIALS_FILE = ""
    response = bearer(google_key.sign()).get(ME)
    assert response.status_code == 503 and "not fully set up" in response.json()["message"]
    assert not User.objects.exists() and network_attempts == []
    assert [w.id for w in firebase_credentials(None)] == ["accounts.W001"]
    settings.FIREBASE_CREDENTIALS_FILE = "/somewhere/key.json"
    assert firebase_credentials(None) == []


@pytest.mark.parametrize("case", ["expired", "wrong key", "wrong audience", "unknown key id", "garbage"])
def test_it_rejects_bad_tokens_with_401_and_a_readable_message(google_certs, google_key, other_key, case):
    token = {
        "expired": lambda: google_key.sign(expires_in=-3600, iat=1_000_000_000, auth_time=1_000_000_000),
        "wrong key": lambda: other_key.sign(),
        "wrong audience": lambda: google_key.sign(aud="another-project"),
        "unknown key id": lambda: google_key.sign(kid="not-a-google-key"),
        "garbage": lambda: "not.a.jwt",
    }[case]()
    response = bearer(token).get(ME)
    assert response.status_code == 401
    message = response.json()["message"]
    assert message.startswith(("Your Firebase sign-in has expired", "This Firebase ID token is not valid"))
    assert token not in response.content.decode()
    assert not User.objects.exists()


def test_it_says_so_when_an_expired_token_is_sent(google_certs, google_key):
    response = bearer(google_key.sign(expires_in=-3600, iat=1_000_000_000, auth_time=1_000_000_000)).get(ME)
    assert response.json()["message"] == "Your Firebase sign-in has expired. Sign in again to get a fresh token."


def test_it_answers_503_when_google_certificates_cannot_be_fetched(monkeypatch, google_certs, google_key):
    def unreachable(request, url):
        raise google.auth.exceptions.TransportError("Could not fetch certificates")

    monkeypatch.setattr(google.oauth2.id_token, "_fetch_certs", unreachable)
    response = bearer(google_key.sign()).get(ME)
    assert response.status_code == 503 and "Try again" in response.json()["message"]


def test_it_creates_the_user_on_first_sign_in_only(google_certs, google_key):
    token = google_key.sign(uid="uid-erin", email="erin@example.com")
    first = user_from_firebase_token(id_token=token)
    second = user_from_firebase_token(id_token=token)
    assert first == second and User.objects.count() == 1
    assert first.email == "erin@example.com" and first.firebase_uid == "uid-erin"


def test_it_links_an_existing_account_by_verified_email(google_certs, google_key, alice):
    user = user_from_firebase_token(id_token=google_key.sign(uid="uid-alice", email="alice@example.com"))
    assert user == alice
    alice.refresh_from_db()
    assert alice.firebase_uid == "uid-alice" and User.objects.count() == 1


def test_it_refuses_an_unverified_email_that_belongs_to_an_existing_account(google_certs, google_key, alice):
    token = google_key.sign(uid="uid-mallory", email="alice@example.com", email_verified=False)
    response = bearer(token).get(ME)
    assert response.status_code == 401 and response.json()["message"].startswith("Verify your email address first")
    alice.refresh_from_db()
    assert alice.firebase_uid is None


@pytest.mark.parametrize("email_verified", [False, None])  # said to be unverified, or not said at all
def test_it_creates_no_account_for_an_unverified_email(google_certs, google_key, email_verified):
    """Anyone can make a Firebase account with someone else's address: it must not take that address here."""
    token = google_key.sign(uid="uid-mallory", email="victim@example.com", email_verified=email_verified)
    response = bearer(token).get(ME)
    assert response.status_code == 401
    assert response.json()["message"] == (
        "Verify your email address first: open the link Firebase sent to it, then sign in again.")
    assert not User.objects.exists()


def test_it_finds_the_user_by_firebase_uid_after_an_email_change(google_certs, google_key, alice):
    alice.firebase_uid = "uid-alice"
    alice.save()
    user = user_from_firebase_token(id_token=google_key.sign(uid="uid-alice", email="alice@new.example"))
    assert user == alice


def test_it_refuses_a_disabled_account(google_certs, google_key, alice):
    alice.is_active = False
    alice.save()
    assert bearer(google_key.sign(uid="uid-alice", email="alice@example.com")).get(ME).status_code == 401


def test_it_leaves_api_tokens_to_the_api_token_class(google_certs, alice):
    _, secret = api_token_create(user=alice, name="script")
    assert bearer(secret).get(ME).json()["email"] == "alice@example.com"
    assert google_certs == []


# --- the browser session endpoint ------------------------------------------------------------------

def csrf_client():
    """A browser-like client that enforces CSRF, with the token read from the sign-in page."""
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("accounts:login"))
    return client, str(page.context["csrf_token"])


def test_it_signs_the_browser_in_with_a_firebase_token(google_certs, google_key):
    client, csrf = csrf_client()
    response = client.post(
        reverse("accounts:firebase_session"),
        {"id_token": google_key.sign(uid="uid-dana", email="dana@example.com"), "next": reverse("accounts:settings")},
        content_type="application/json", headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "email": "dana@example.com", "redirect": reverse("accounts:settings")}
    assert client.get(reverse("accounts:settings")).status_code == 200
    assert client.session["_auth_user_id"] == str(User.objects.get(firebase_uid="uid-dana").pk)


def test_it_refuses_a_firebase_session_without_a_csrf_token(google_certs, google_key):
    client, _ = csrf_client()
    response = client.post(reverse("accounts:firebase_session"), {"id_token": google_key.sign()},
                           content_type="application/json")
    assert response.status_code == 403
    assert not User.objects.exists()


def test_it_answers_a_bad_firebase_session_token_with_readable_json(google_certs, other_key):
    client, csrf = csrf_client()
    token = other_key.sign()
    response = client.post(reverse("accounts:firebase_session"), {"id_token": token},
                           content_type="application/json", headers={"X-CSRFToken": csrf})
    assert response.status_code == 401
    assert response.json()["ok"] is False and "not valid" in response.json()["message"]
    assert token not in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_asks_for_the_token_in_the_firebase_session_request(firebase_enabled):
    client, csrf = csrf_client()
    response = client.post(reverse("accounts:firebase_session"), {}, content_type="application/json",
                           headers={"X-CSRFToken": csrf})
    assert response.status_code == 400 and "id_token" in response.json()["message"]


def test_it_keeps_firebase_session_closed_when_firebase_is_off(client, settings):
    settings.FIREBASE_PROJECT_ID = ""
    response = client.post(reverse("accounts:firebase_session"), {"id_token": "x"}, content_type="application/json")
    assert response.status_code == 404 and response.json()["message"] == "Firebase sign-in is not enabled on this server."


def test_it_ignores_bearer_jwts_when_firebase_is_off(settings, network_attempts):
    settings.FIREBASE_PROJECT_ID = ""
    assert bearer(emulator_token()).get(ME).status_code == 401
    with pytest.raises(ValueError):
        firebase_admin.get_app(APP_NAME)  # nothing was even initialised


# --- the sign-in page ----------------------------------------------------------------------------

def test_it_offers_firebase_sign_in_only_when_enabled(client, settings, firebase_enabled):
    page = client.get(reverse("accounts:login")).content.decode()
    assert "Sign in with Firebase" in page and "https://www.gstatic.com/firebasejs/" in page
    assert reverse("accounts:firebase_session") in page and FIREBASE_PROJECT in page

    settings.FIREBASE_PROJECT_ID = ""
    page = client.get(reverse("accounts:login")).content.decode()
    assert "Sign in with Firebase" not in page and "gstatic" not in page


def test_it_gives_templates_the_public_firebase_config(firebase_emulator, rf):
    config = firebase_context(rf.get("/"))["firebase"]
    assert config["enabled"] and config["project_id"] == FIREBASE_PROJECT and config["api_key"] == "test-api-key"
    assert config["auth_domain"] == f"{FIREBASE_PROJECT}.firebaseapp.com"
    assert config["emulator_url"].startswith("http://127.0.0.1:")
