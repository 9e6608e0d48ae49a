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
