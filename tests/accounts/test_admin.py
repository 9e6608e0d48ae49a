import pytest

from apps.accounts.models import User
from tests.factories import ApiTokenFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser(email="root@example.com", password="an admin passphrase"))
    return client


def test_it_lists_users_by_email_in_the_admin(admin_client, alice):
    response = admin_client.get("/admin/accounts/user/?q=alice")
    assert response.status_code == 200 and "alice@example.com" in response.content.decode()


def test_it_adds_a_user_by_email_in_the_admin(admin_client):
    response = admin_client.post("/admin/accounts/user/add/", {
        "email": "New@Example.com", "usable_password": "true",
        "password1": "a long enough passphrase", "password2": "a long enough passphrase",
    })
    assert response.status_code == 302
    assert User.objects.get(email="new@example.com").check_password("a long enough passphrase")


def test_it_shows_a_users_change_page(admin_client, alice):
    assert admin_client.get(f"/admin/accounts/user/{alice.pk}/change/").status_code == 200


def test_it_never_shows_a_token_hash_in_the_admin(admin_client, alice):
    token = ApiTokenFactory(owner=alice, name="ci")
    listing = admin_client.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200 and token.prefix in listing.content.decode()
    page = admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert token.key_hash not in page and "ci" in page
    assert admin_client.get("/admin/accounts/apitoken/add/").status_code == 403
