"""The playground in headless Chromium: type a prompt, watch both columns write their answers."""
import os

from tests.browser import BROWSER_TEST

SCREENSHOT = os.environ.get("PLAYGROUND_SCREENSHOT")  # a path: keep a picture of the page for review
pytestmark = BROWSER_TEST



def test_it_streams_answers_into_the_columns_as_a_prompt_is_sent(alice, alice_model, server, worker, browser_context,
                                                                  session_cookie):
    context = browser_context
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
    page.wait_for_function("() => document.querySelectorAll('[data-column=\"0\"] [data-role=answer]').length === 2 && "
                           "document.querySelector('[data-column=\"0\"]').dataset.state === 'done'", timeout=60000)
    assert tuned.locator("[data-role=answer]").nth(1).inner_text().strip() == "Item3 lives in Lima."
