"""The playground in headless Chromium: type a prompt, watch both columns write their answers."""
import os
import shutil
from pathlib import Path

import pytest

SCREENSHOT = os.environ.get("PLAYGROUND_SCREENSHOT")  # a path: keep a picture of the page for review
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context
        browser.close()
    connections.close_all()


def test_it_streams_answers_into_the_columns_as_a_prompt_is_sent(alice, alice_model, server, worker, browser_page,
                                                                  session_cookie):
    context = browser_page
    context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": server}])
    page = context.new_page()
    page.goto(f"{server}/playground/")
    page.wait_for_selector("[data-role=playground][data-ready=true]", timeout=15000)
    columns = page.locator("[data-role=column]")
    assert columns.count() == 2

    page.evaluate("""() => {  // record each column's states as the page moves through them
      window.states = [];
      new MutationObserver((records) => records.forEach((r) => window.states.push(r.target.dataset.column + ":" + r.target.dataset.state)))
        .observe(document.querySelector("[data-role=playground]"), {attributes: true, subtree: true, attributeFilter: ["data-state"]});
    }""")
    page.fill("[data-role=max_tokens]", "24")
    page.fill("[data-role=prompt]", "Where does item2 live?")
    page.click("[data-role=send]")
    page.wait_for_selector("[data-role=column][data-column='0'][data-state=done]", timeout=60000)
    page.wait_for_selector("[data-role=column][data-column='1'][data-state=done]", timeout=60000)
    tuned = columns.nth(0)
    assert tuned.locator("[data-role=question]").inner_text() == "Where does item2 live?"
    assert tuned.locator("[data-role=answer]").inner_text().strip() == "Item2 lives in Oslo."
    assert columns.nth(1).locator("[data-role=answer]").inner_text().strip() != ""  # the base model wrote something
    assert "tokens" in tuned.locator("[data-role=status]").inner_text()
    states = page.evaluate("window.states")
    assert [s for s in states if s.startswith("0:")][-3:] == ["0:queued", "0:streaming", "0:done"], states
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)

    # A follow-up is a second turn in each column.
    page.fill("[data-role=prompt]", "Where does item3 live?")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('[data-column=\"0\"] [data-role=answer]').length === 2 && "
                           "document.querySelector('[data-column=\"0\"]').dataset.state === 'done'", timeout=60000)
    assert tuned.locator("[data-role=answer]").nth(1).inner_text().strip() == "Item3 lives in Lima."
