"""Error pages inside the site's layout (404, 403, the CSRF 403, 500), and the favicon."""
import urllib.error
import urllib.request

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import path, reverse

from apps.datasets.services import dataset_create
from garage.urls import urlpatterns as site_urlpatterns
from tests.live import asgi_server


def forbidden(request):
    raise PermissionDenied("Not yours.")


# The site's own URLs, plus a page that refuses everyone (no page of the site raises PermissionDenied yet).
urlpatterns = [*site_urlpatterns, path("test-forbidden/", forbidden)]

LAYOUT = 'href="/static/garage/garage.css"'


def assert_error_page(response, status):
    assert response.status_code == status
    page = response.content.decode()
    assert LAYOUT in page and 'class="topbar"' in page  # inside the site's layout, styled
    assert 'data-role="error-page"' in page
    assert f'href="{reverse("dashboard")}"' in page and f'href="{reverse("datasets:list")}"' in page  # ways on
    assert "Content-Security-Policy" in response.headers
    return page


@pytest.mark.django_db
def test_it_shows_a_styled_404_for_an_unknown_address(alice_client):
    page = assert_error_page(alice_client.get("/no-such-page/"), 404)
    assert "Page not found" in page and "/no-such-page/" in page
    assert f'href="{reverse("training:list")}"' in page  # the signed-in navigation is there


@pytest.mark.django_db
def test_it_shows_the_same_404_for_a_strangers_object_and_names_nothing_of_it(alice, bob, client):
    dataset = dataset_create(owner=alice, name="Alice's secret plans")
    client.force_login(bob)
    page = assert_error_page(client.get(reverse("datasets:detail", kwargs={"code": dataset.code})), 404)
    assert "Page not found" in page and "secret plans" not in page


@pytest.mark.django_db
def test_it_offers_anonymous_visitors_to_sign_in_on_the_404(client):
    page = assert_error_page(client.get("/no-such-page/"), 404)
    assert f'href="{reverse("accounts:login")}"' in page


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_it_shows_a_styled_403(alice_client):
    page = assert_error_page(alice_client.get("/test-forbidden/"), 403)
    assert "You cannot open this page" in page


@pytest.mark.django_db
def test_it_explains_a_form_sent_without_its_security_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = assert_error_page(client.post(reverse("accounts:logout")), 403)
    assert "This form could not be sent" in page and "reload the page" in page


def test_it_shows_a_styled_500_when_the_database_is_down():
    """The real server, with a database it cannot open: the session lookup of a signed-in visitor fails."""
    with asgi_server(DATABASE_URL="sqlite:////nonexistent-garage-folder/garage.sqlite3") as url:
        request = urllib.request.Request(f"{url}/", headers={"Cookie": "sessionid=" + "a" * 32})
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(request, timeout=30)
        assert failure.value.code == 500
        page = failure.value.read().decode()
        assert "Something went wrong on the server" in page and 'data-role="error-page"' in page
        assert 'href="/"' in page and 'href="/datasets/"' in page
        assert LAYOUT in page
        with urllib.request.urlopen(f"{url}/static/garage/garage.css", timeout=30) as stylesheet:
            assert stylesheet.status == 200  # the page still looks like the site: its stylesheet needs no database


@pytest.mark.django_db
def test_it_answers_favicon_requests(client, alice_client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200 and response.redirect_chain
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    # Pages link the scalable icon.
    assert '<link rel="icon" href="/static/garage/favicon.svg"' in alice_client.get(reverse("datasets:list")).content.decode()
    assert client.get("/static/garage/favicon.svg").status_code == 200
