import hashlib
import re

import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts.models import ApiToken, User
from tests.conftest import PASSWORD
from tests.factories import ApiTokenFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new lengthy passphrase"


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


@pytest.mark.parametrize("name", ["login", "signup", "password_reset", "password_reset_done", "password_reset_complete"])
def test_it_shows_the_public_pages_to_anonymous_visitors(client, name):
    response = client.get(reverse(f"accounts:{name}"))
    assert response.status_code == 200
    assert b"Gemma Garage" in response.content  # rendered inside base.html


def test_it_signs_up_with_email_and_password(client):
    response = client.post(reverse("accounts:signup"), {
        "email": "Dana@Example.com", "password1": PASSWORD, "password2": PASSWORD,
    })
    assert response.status_code == 302 and response.url == reverse("dashboard")
    user = User.objects.get(email="dana@example.com")
    assert user.check_password(PASSWORD)
    assert signed_in_user_id(client) == str(user.pk)


def test_it_refuses_to_sign_up_an_email_that_already_has_an_account(client, alice):
    response = client.post(reverse("accounts:signup"), {
        "email": "ALICE@example.com", "password1": PASSWORD, "password2": PASSWORD,
    })
    assert response.status_code == 200
    assert "An account with this email already exists" in response.content.decode()
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


@pytest.mark.parametrize("password,message", [
    ("password", "This password is too common"),
    ("abc", "This password is too short"),
    ("82736451928374", "This password is entirely numeric"),
])
def test_it_refuses_to_sign_up_with_a_weak_password(client, password, message):
    response = client.post(reverse("accounts:signup"), {
        "email": "dana@example.com", "password1": password, "password2": password,
    })
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(email="dana@example.com").exists()


def test_it_does_not_redirect_to_another_site_after_sign_up(client):
    response = client.post(reverse("accounts:signup") + "?next=https://evil.example/", {
        "email": "dana@example.com", "password1": PASSWORD, "password2": PASSWORD, "next": "https://evil.example/",
    })
    assert response.status_code == 302 and response.url == reverse("dashboard")


def test_it_signs_in_with_email_and_password_whatever_the_case_of_the_email(client, alice):
    response = client.post(reverse("accounts:login"), {"username": "Alice@Example.COM", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("dashboard")
    assert signed_in_user_id(client) == str(alice.pk)


def test_it_refuses_a_wrong_password_with_a_readable_message(client, alice):
    response = client.post(reverse("accounts:login"), {"username": "alice@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "That email and password do not match an account" in response.content.decode()
    assert signed_in_user_id(client) is None


def test_it_signs_out_with_a_post_only(alice_client):
    # A GET (a typed or bookmarked address) asks first, with the button that sends the POST.
    response = alice_client.get(reverse("accounts:logout"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Sign out?" in page and "alice@example.com" in page
    assert f'<form method="post" action="{reverse("accounts:logout")}"' in page
    assert signed_in_user_id(alice_client) is not None
    response = alice_client.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response.url == reverse("accounts:login")
    assert signed_in_user_id(alice_client) is None


def test_it_sends_anonymous_visitors_of_the_sign_out_page_to_sign_in(client):
    response = client.get(reverse("accounts:logout"))
    assert response.status_code == 302 and response.url == reverse("accounts:login")


def test_it_emails_a_password_reset_link_that_works(client, alice):
    response = client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302 and response.url == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"] and message.subject == "Reset your Gemma Garage password"
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)

    # Django swaps the token in the link for a session value, then shows the form at a fixed URL.
    response = client.get(link, follow=True)
    assert response.status_code == 200 and response.context["validlink"]
    form_url = response.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("accounts:password_reset_complete")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)

    # The link works once.
    response = client.get(link, follow=True)
    assert not response.context["validlink"]
    assert "This reset link is not valid any more" in response.content.decode()


def test_it_does_not_reveal_whether_an_email_has_an_account(client, alice):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response.url == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_it_requires_sign_in_for_the_settings_page(client):
    response = client.get(reverse("accounts:settings"))
    assert response.status_code == 302
    assert response.url == f"{reverse('accounts:login')}?next={reverse('accounts:settings')}"


def test_it_shows_a_new_token_once_and_stores_only_its_hash(alice_client, alice):
    response = alice_client.post(reverse("accounts:settings"), {"action": "create_token", "name": "laptop script"})
    assert response.status_code == 200
    page = response.content.decode()
    secret = re.search(r"gg_[A-Za-z0-9_-]{40,}", page).group(0)
    token = ApiToken.objects.get(owner=alice)
    assert token.name == "laptop script"
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix) and len(token.prefix) < len(secret)
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert not any(secret in value for value in stored)

    page = alice_client.get(reverse("accounts:settings")).content.decode()
    assert secret not in page
    assert token.prefix in page and "laptop script" in page


def test_it_asks_for_a_token_name(alice_client, alice):
    response = alice_client.post(reverse("accounts:settings"), {"action": "create_token", "name": "  "})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_it_revokes_a_token_from_the_settings_page(alice_client, alice):
    token = ApiTokenFactory(owner=alice, name="old script")
    response = alice_client.post(reverse("accounts:settings"), {"action": "revoke_token", "token": str(token.code)})
    assert response.status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()


@pytest.mark.parametrize("stranger", ["bob", "charlie"])
def test_it_answers_404_when_a_stranger_revokes_someone_elses_token(client, alice, stranger, request):
    token = ApiTokenFactory(owner=alice)
    client.force_login(request.getfixturevalue(stranger))
    response = client.post(reverse("accounts:settings"), {"action": "revoke_token", "token": str(token.code)})
    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()
    assert token.name not in client.get(reverse("accounts:settings")).content.decode()


def test_it_changes_the_password(alice_client, alice):
    response = alice_client.post(reverse("accounts:settings"), {
        "action": "change_password", "old_password": PASSWORD,
        "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    })
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert signed_in_user_id(alice_client) == str(alice.pk)  # this browser stays signed in


def test_it_lets_a_firebase_only_user_set_a_password(client):
    user = User.objects.create_user(email="fb@example.com", password=None, firebase_uid="uid-1")
    client.force_login(user)
    assert "Set a password" in client.get(reverse("accounts:settings")).content.decode()
    response = client.post(reverse("accounts:settings"), {
        "action": "change_password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    })
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
