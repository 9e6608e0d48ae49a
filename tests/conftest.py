"""Shared fixtures: the users alice (owner), bob and charlie (strangers), API clients, files."""
import os

import pytest

# Forms, the API and the CLI propose the best real model installed; tests never run a real model, whatever this
# machine has installed (`make run` installs two), except the journey walked with one for README's pictures (`make
# screenshots`), whose pages then propose that model. Set before anything starts, so live workers inherit it too.
os.environ["GARAGE_DEFAULT_MODEL"] = os.environ.get("GARAGE_JOURNEY_MODEL", "tiny-gemma3")
# The fake servers (tests/fakes) listen on loopback, which the outbound guard refuses unless allowed, as `garage run`
# allows it; tests of the guard itself set GARAGE_ALLOWED_ENDPOINTS to empty.
os.environ["GARAGE_ALLOWED_ENDPOINTS"] = "localhost,127.0.0.0/8,::1"  # for live workers, started later
# Rate limits and the sign-in lockout high enough that no test trips them by accident (the tests of the limits lower
# them): for live servers started later, and for this process in `relax_rate_limits`.
RELAXED_RATE = "100000/min"
for _scope in ("API", "API_ANON", "OPENAI", "PLAYGROUND", "SIGNUP", "PASSWORD_RESET"):
    os.environ[f"GARAGE_THROTTLE_{_scope}"] = RELAXED_RATE
os.environ["GARAGE_SIGNIN_FAILURE_LIMIT"] = "1000"

from tests.fakes.chat_server import chat_server  # noqa: F401  (the fake OpenAI-compatible endpoint)

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True, scope="session")
def job_types():
    """This process runs jobs as a worker does (the suite calls job bodies and ends jobs directly): every app's job
    types are declared, so what follows a job (their `after`) runs as it does on a worker."""
    from apps.core.jobtypes import job_types_load

    job_types_load()


@pytest.fixture(autouse=True, scope="session")
def allow_loopback_endpoints():
    """The same for this process, whose settings were read before this file."""
    from django.conf import settings

    settings.GARAGE_ALLOWED_ENDPOINTS = os.environ["GARAGE_ALLOWED_ENDPOINTS"].split(",")


@pytest.fixture(autouse=True, scope="session")
def relax_rate_limits():
    """The same for this process, whose settings were read before this file."""
    from django.conf import settings

    settings.GARAGE_THROTTLE_RATES = {scope: RELAXED_RATE for scope in settings.GARAGE_THROTTLE_RATES}
    settings.AXES_FAILURE_LIMIT = 1000


@pytest.fixture
def fresh_throttles(settings):
    """Rate-limit counters of this test only: the cache under a key prefix of its own. (Never cache.clear(): it would
    empty the Redis database that Celery and Channels share.)"""
    import uuid

    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    return settings.CACHES["default"]["KEY_PREFIX"]


def _user(email):
    from tests.factories import UserFactory

    return UserFactory(email=email, password=PASSWORD)


@pytest.fixture
def alice(db):
    return _user("alice@example.com")


@pytest.fixture
def bob(db):
    return _user("bob@example.com")


@pytest.fixture
def charlie(db):
    return _user("charlie@example.com")


def _api_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def alice_api(alice):
    return _api_client(alice)


@pytest.fixture
def bob_api(bob):
    return _api_client(bob)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture(autouse=True)
def settle_jobs_after_live_tests(request):
    """After a test that shared its database with the live worker, cancel the jobs still going and wait for the
    worker to let go of them: work a test set off without waiting for it (the held-out evaluation queued after a
    training, say) must not run into the database flush that ends the test."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or "transactional_db" in request.fixturenames
    if "worker" not in request.fixturenames or not transactional:
        yield
        return
    request.getfixturevalue("_django_db_helper")  # set up before this fixture, so flushed only after it
    yield
    from tests.live import jobs_settle

    jobs_settle()


@pytest.fixture(scope="session")
def worker(django_db_setup):
    """A live Celery worker on queues default and gpu, shared by the session's tests."""
    from tests.live import celery_worker

    with celery_worker(name="session") as process:
        yield process


@pytest.fixture(scope="session")
def server(django_db_setup):
    """The ASGI server (pages, API, websockets) on a free port; yields its base URL."""
    from tests.live import asgi_server

    with asgi_server() as url:
        yield url


@pytest.fixture
def session_cookie():
    """Returns a function that signs a user in and gives the session cookie value (for websockets and browsers)."""
    from django.test import Client

    def make(user):
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return make


@pytest.fixture
def browser_context(monkeypatch):
    """A fresh headless Chromium context (downloads accepted), closed after the test."""
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        # What the Content-Security-Policy blocks, the browser reports in the console: no page may trip it.
        violations = []
        context.on("console", lambda message: violations.append(message.text)
                   if "Content Security Policy" in message.text else None)
        yield context
        browser.close()
    assert not violations, f"The Content-Security-Policy blocked parts of a page: {violations}"
    connections.close_all()  # connections opened beside Playwright's loop would outlive the test database


@pytest.fixture
def browser_page(browser_context):
    return browser_context.new_page()
