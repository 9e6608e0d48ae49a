"""Headless Chromium for the page tests: Debian's chromium driven by Playwright, without a browser download.

Browser test modules set `pytestmark = BROWSER_TEST` and take the `browser_context` or `browser_page` fixture."""
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
BROWSER_TEST = [
    pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def sign_in(page, server, user):
    """Signs `user` in through the sign-in page (the suite's users share tests.conftest.PASSWORD)."""
    from tests.conftest import PASSWORD

    page.goto(f"{server}/accounts/login/")
    page.fill("input[name=username], input[name=email]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url(f"{server}/")
