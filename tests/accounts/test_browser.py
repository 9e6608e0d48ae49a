"""The Firebase sign-in page in headless Chromium, against the real server in emulator mode.

The Firebase JS SDK cannot be downloaded offline, so the browser gets small stand-in modules at the
SDK's CDN addresses. They hand out unsigned emulator tokens, which the server really verifies.
"""
import shutil
from pathlib import Path

import pytest
from django.db import connections

from apps.accounts.models import User
from tests.accounts.conftest import FIREBASE_PROJECT, FakeIdentityToolkit
from tests.live import asgi_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
GOOD_PASSWORD = "the right password"
pytestmark = [
    pytest.mark.browser, pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]

FAKE_FIREBASE_APP = "export function initializeApp(options) { window.firebaseOptions = options; return { options }; }"
FAKE_FIREBASE_AUTH = """
export const inMemoryPersistence = { type: "NONE" };
export function initializeAuth(app, deps) { window.firebasePersistence = deps.persistence.type; return { app }; }
export function connectAuthEmulator(auth, url) { window.firebaseEmulatorUrl = url; }
const b64 = (data) => btoa(JSON.stringify(data)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
function emulatorToken(email, verified) {
  const now = Math.floor(Date.now() / 1000), uid = "uid-" + email.split("@")[0];
  return b64({ alg: "none", typ: "JWT" }) + "." + b64({
    iss: "https://securetoken.google.com/%(project)s", aud: "%(project)s", sub: uid, user_id: uid,
    iat: now, exp: now + 3600, auth_time: now, email, email_verified: verified,
    firebase: { sign_in_provider: "password" },
  }) + ".";
}
export async function signInWithEmailAndPassword(auth, email, password) {
  if (password !== "%(password)s") {
    const error = new Error("Firebase: Error (auth/invalid-credential).");
    error.code = "auth/invalid-credential";
    throw error;
  }
  // Addresses starting with "new" have not been verified yet.
  const verified = !email.startsWith("new");
  return { user: { email, emailVerified: verified, getIdToken: async () => emulatorToken(email, verified) } };
}
export const createUserWithEmailAndPassword = signInWithEmailAndPassword;
export async function sendEmailVerification(user) { window.verificationSentTo = user.email; }
""" % {"project": FIREBASE_PROJECT, "password": GOOD_PASSWORD}


@pytest.fixture(scope="module")
def firebase_server(django_db_setup):
    """The ASGI server with Firebase on, in emulator mode; the fake Identity Toolkit answers as the emulator."""
    with FakeIdentityToolkit().running() as toolkit, asgi_server(
        FIREBASE_PROJECT_ID=FIREBASE_PROJECT, FIREBASE_API_KEY="test-api-key", FIREBASE_AUTH_EMULATOR_HOST=toolkit.host,
    ) as url:
        yield url


@pytest.fixture
def page(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls stay synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        context = browser.new_context()
        requested = []

        def serve(route):
            url = route.request.url
            requested.append(url)
            if url.startswith("https://www.gstatic.com/firebasejs/"):
                body = FAKE_FIREBASE_AUTH if url.endswith("/firebase-auth.js") else FAKE_FIREBASE_APP
                # Module scripts from another origin load only with CORS headers, as the real CDN sends.
                route.fulfill(status=200, body=body, content_type="text/javascript",
                              headers={"Access-Control-Allow-Origin": "*"})
            elif url.startswith("http://127.0.0.1:"):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", serve)
        page = context.new_page()
        page.requested = requested
        yield page
        browser.close()
        # The test's ORM calls ran while Playwright's event loop was active, which gives them a database
        # connection of their own; closing it here, still inside that context, lets PostgreSQL drop
        # the test database at the end of the session.
        connections.close_all()


def test_it_signs_in_through_the_firebase_form(firebase_server, page):
    page.goto(f"{firebase_server}/accounts/login/?next=/accounts/settings/")
    page.fill("#firebase-email", "dana@example.com")
    page.fill("#firebase-password", "a wrong password")
    page.click("button:has-text('Sign in with Firebase')")
    page.wait_for_selector("#firebase-error:not([hidden])")
    assert page.inner_text("#firebase-error") == "That email and password do not match a Firebase account."
    assert not User.objects.exists()
    assert page.evaluate("window.firebaseOptions.projectId") == FIREBASE_PROJECT
    assert page.evaluate("window.firebasePersistence") == "NONE"
    assert page.evaluate("window.firebaseEmulatorUrl").startswith("http://127.0.0.1:")

    page.fill("#firebase-password", GOOD_PASSWORD)
    page.click("button:has-text('Sign in with Firebase')")
    page.wait_for_url(f"{firebase_server}/accounts/settings/")
    assert "dana@example.com" in page.inner_text("header")
    assert User.objects.get(email="dana@example.com").firebase_uid == "uid-dana"
    assert {url.rsplit("/", 1)[-1] for url in page.requested if "gstatic" in url} == {"firebase-app.js", "firebase-auth.js"}


def test_it_asks_to_verify_a_new_firebase_address_before_signing_in(firebase_server, page):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{firebase_server}/accounts/login/")
    page.fill("#firebase-email", "newcomer@example.com")
    page.fill("#firebase-password", GOOD_PASSWORD)
    page.click("button:has-text('Create a Firebase account')")
    page.wait_for_selector("#firebase-error:not([hidden])")
    assert page.inner_text("#firebase-error") == (
        "Firebase sent a link to newcomer@example.com to verify the address. Open it, then sign in here again.")
    assert page.evaluate("window.verificationSentTo") == "newcomer@example.com"
    assert not User.objects.exists()
    assert not [e for e in errors if "Content Security Policy" in e], errors
