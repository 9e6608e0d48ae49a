"""Sign-in lockout (django-axes), and the rate limits of sign-up and password reset: 429 pages with Retry-After."""
import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
ADMIN_LOGIN = "/admin/login/"
SIGNUP = reverse("accounts:signup")
RESET = reverse("accounts:password_reset")


@pytest.fixture
def lockout_after_three(settings):
    settings.AXES_FAILURE_LIMIT = 3


@pytest.fixture
def rates(settings, fresh_throttles):
    """Lowers some rates for this test: rates(signup="2/hour")."""
    def lower(**changed):
        settings.GARAGE_THROTTLE_RATES = {**settings.GARAGE_THROTTLE_RATES, **changed}
    return lower


def sign_in(client, email, password, ip="10.0.0.1", url=LOGIN):
    return client.post(url, {"username": email, "password": password}, REMOTE_ADDR=ip)


def assert_refused(response, *, text, retry_after=None):
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    if retry_after is not None:
        assert response["Retry-After"] == str(retry_after)
    page = response.content.decode()
    assert text in page and "<html" in page  # a page of the site, not a bare error
    return page


def test_it_locks_an_account_out_after_repeated_failures(client, alice, lockout_after_three):
    assert sign_in(client, "alice@example.com", "wrong 1").status_code == 200
    assert sign_in(client, "alice@example.com", "wrong 2").status_code == 200
    assert_refused(sign_in(client, "alice@example.com", "wrong 3"), text="Too many failed sign-ins", retry_after=900)
    # Locked out: the right password is refused too, from any address, until the lockout ends.
    page = assert_refused(sign_in(client, "Alice@Example.com", PASSWORD, ip="10.9.9.9"), text="Too many failed sign-ins")
    assert "15 minutes" in page
    assert "_auth_user_id" not in client.session
    # Other accounts are not affected.
    assert sign_in(client, "bob@example.com", PASSWORD, ip="10.9.9.9").status_code == 200  # (no such user: the form)


def test_it_locks_an_address_out_across_accounts(client, alice, lockout_after_three):
    for name in ("x", "y", "z"):
        sign_in(client, f"{name}@example.com", "guess", ip="10.0.0.66")
    assert_refused(sign_in(client, "alice@example.com", PASSWORD, ip="10.0.0.66"), text="Too many failed sign-ins")
    response = sign_in(client, "alice@example.com", PASSWORD, ip="10.0.0.2")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(alice.pk)


def test_it_believes_the_connection_not_a_forwarded_for_header(client, alice, lockout_after_three):
    for n in range(3):
        client.post(LOGIN, {"username": "alice@example.com", "password": "guess"}, REMOTE_ADDR="10.0.0.7",
                    HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert_refused(sign_in(client, "carol@example.com", "guess", ip="10.0.0.7"), text="Too many failed sign-ins")


def test_it_forgets_failures_after_a_successful_sign_in(client, alice, lockout_after_three):
    sign_in(client, "alice@example.com", "wrong 1")
    sign_in(client, "alice@example.com", "wrong 2")
    assert sign_in(client, "alice@example.com", PASSWORD).status_code == 302
    client.logout()
    sign_in(client, "alice@example.com", "wrong 3")
    assert sign_in(client, "alice@example.com", PASSWORD).status_code == 302


def test_it_locks_the_admin_login_out_too(client, lockout_after_three):
    from apps.accounts.models import User

    User.objects.create_superuser(email="root@example.com", password="an admin passphrase")
    for n in range(2):
        assert sign_in(client, "root@example.com", f"guess {n}", url=ADMIN_LOGIN).status_code == 200
    assert_refused(sign_in(client, "root@example.com", "guess 3", url=ADMIN_LOGIN), text="Too many failed sign-ins")
    assert_refused(sign_in(client, "root@example.com", "an admin passphrase", url=ADMIN_LOGIN),
                   text="Too many failed sign-ins")


def test_it_limits_sign_ups_per_address(client, rates):
    rates(signup="2/hour")
    form = {"email": "new@example.com", "password1": "a long enough passphrase", "password2": "does not match"}
    assert client.post(SIGNUP, form, REMOTE_ADDR="10.0.1.1").status_code == 200
    assert client.post(SIGNUP, form, REMOTE_ADDR="10.0.1.1").status_code == 200
    page = assert_refused(client.post(SIGNUP, form, REMOTE_ADDR="10.0.1.1"), text="Too many sign-ups from this address")
    assert "Try again in 60 minutes" in page
    assert client.post(SIGNUP, form, REMOTE_ADDR="10.0.1.2").status_code == 200
    assert client.get(SIGNUP, REMOTE_ADDR="10.0.1.1").status_code == 200  # the form itself stays readable


def test_it_limits_password_resets_per_address_and_per_email(client, alice, bob, rates, mailoutbox):
    rates(password_reset="2/hour")
    # Per address, whatever the email.
    for email in ("alice@example.com", "bob@example.com"):
        assert client.post(RESET, {"email": email}, REMOTE_ADDR="10.0.2.1").status_code == 302
    assert_refused(client.post(RESET, {"email": "carol@example.com"}, REMOTE_ADDR="10.0.2.1"),
                   text="Too many password reset requests")
    # Per email, whatever the address: nobody floods one inbox from many addresses.
    assert client.post(RESET, {"email": "Alice@Example.com"}, REMOTE_ADDR="10.0.2.2").status_code == 302
    page = assert_refused(client.post(RESET, {"email": "alice@example.com"}, REMOTE_ADDR="10.0.2.3"),
                          text="Too many password reset requests")
    assert "A link already sent stays valid." in page
    assert [m.to for m in mailoutbox] == [["alice@example.com"], ["bob@example.com"], ["alice@example.com"]]
