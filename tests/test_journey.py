"""A newcomer's whole journey in headless Chromium, one step at a time as the pages lead: sign up → create a dataset →
upload a document → generate pairs → freeze a version → train → held-out evaluation → playground → GGUF export.

At each step the page must link onward (or back to what a job belongs to), and once a job has ended no page may still
show an ETA, a running phase or a promise of work to come.

The suite trains the tiny test model. `GARAGE_JOURNEY_MODEL=<catalogue name>` walks the same journey with a real
model, and `GARAGE_JOURNEY_SCREENSHOTS=<folder>` keeps a picture of each step (README's come from such a run with
SmolLM2-135M-Instruct: `make screenshots`)."""
import os
import re
import time
from pathlib import Path

from tests.browser import BROWSER_TEST
from tests.conftest import PASSWORD

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "lumen-valley-field-guide.md"
MODEL = os.environ.get("GARAGE_JOURNEY_MODEL", "tiny-gemma3")
SCREENSHOTS = os.environ.get("GARAGE_JOURNEY_SCREENSHOTS")
# A real model on a CPU trains for minutes; the tiny one for seconds.
PATIENCE_S = 1800 if MODEL != "tiny-gemma3" else 240
FINAL = ("succeeded", "failed", "cancelled")
# Words that only belong on a page while work is still to come.
STALE = [re.compile(pattern) for pattern in (r"\bETA\b", r"runs automatically", r"will run", r"is being scored",
                                             r"An export is running", r"Results appear here")]

pytestmark = BROWSER_TEST


def shot(page, name):
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def wait_for_jobs_to_end(page):
    """Waits until every job panel on the page shows a final status, and for the reload that a panel asks for when
    its job ends (data-reload-on-finish): a click made before it would be lost to it."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        try:
            panels = page.eval_on_selector_all(
                "section.job[data-job]", "(panels) => panels.map((p) => [p.dataset.status, p.dataset.reloadOnFinish])")
        except Exception:  # the page reloaded between two looks
            panels = [("reloading", None)]
        statuses = [status for status, _ in panels]
        if all(status in FINAL for status in statuses):
            if any(when is not None and when in ("", status) for status, when in panels):
                wait_for_reload(page)
            page.wait_for_load_state()
            return statuses
        page.wait_for_timeout(250)
    raise AssertionError(f"jobs still running after {PATIENCE_S} s: {statuses}")


def wait_for_reload(page):
    """Marks the page's window and waits until a window without the mark (the reloaded page) has loaded."""
    try:
        page.evaluate("() => { window.journeyBeforeReload = true; }")
    except Exception:  # already reloading
        pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if not page.evaluate("() => window.journeyBeforeReload === true"):
                return
        except Exception:  # the page is between two documents
            pass
        page.wait_for_timeout(100)
    raise AssertionError("the page did not reload after its job ended")


def assert_nothing_stale(page, step):
    """No visible text promises work to come, and no ended job's panel shows a phase."""
    visible = page.locator("main").inner_text() if page.locator("main").count() else page.locator("body").inner_text()
    for pattern in STALE:
        assert not pattern.search(visible), f"{step}: stale '{pattern.pattern}' in: {visible[:2000]}"
    for panel in page.locator("section.job[data-job]").all():
        assert panel.get_attribute("data-status") in FINAL, step
        assert panel.locator("[data-role=phase]").inner_text().strip() == "", step


def test_a_newcomer_goes_from_sign_up_to_a_gguf_file(server, worker, browser_page):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())  # confirmations are answered yes; tests/test_confirmations.py asks them

    # Sign up: the dashboard greets the new account and leads to datasets.
    page.goto(f"{server}/accounts/signup/")
    page.fill("input[name=email]", "newcomer@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{server}/")
    assert page.locator("a[href='/datasets/']").count() >= 1

    # A dataset, then a document: its extraction runs on the dataset's page.
    page.goto(f"{server}/datasets/")
    page.fill("input[name=name]", "Lumen Valley")
    page.click("form.card button")
    page.wait_for_url(re.compile(r".*/datasets/[0-9a-f-]{36}/$"))
    dataset_url = page.url
    page.locator("#documents input[type=file]").set_input_files(str(SAMPLE))
    page.locator("#documents button").click()
    page.wait_for_url(re.compile(r".*/datasets/[0-9a-f-]{36}/.*"))
    wait_for_jobs_to_end(page)
    page.goto(dataset_url)
    assert page.locator("#documents .badge").first.inner_text() == "Extracted"
    assert_nothing_stale(page, "extracted")

    # Generate pairs: the job's page says what it belongs to and leads back.
    page.locator("#generate button", has_text="Generate pairs").click()
    page.wait_for_url("**/jobs/*/")
    back = page.locator("[data-role=back]")
    assert back.get_attribute("href") in dataset_url and "Lumen Valley" in back.inner_text()
    assert wait_for_jobs_to_end(page) == ["succeeded"]
    assert_nothing_stale(page, "pairs generated")
    back.click()
    page.wait_for_url(dataset_url)
    assert page.locator("#pairs .pair, #pairs [data-role=pair]").count() > 0 or "No pairs yet" not in page.inner_text("#pairs")

    # Freeze a version, and train on it with the chosen model from the grouped picker.
    page.locator("#versions form.card button", has_text="Freeze a version").click()
    page.wait_for_url("**/datasets/versions/*/")
    assert page.locator(f"a[href='{dataset_url.removeprefix(server)}']").count() >= 1  # the version leads back
    form = page.locator("form", has_text="Train on this version")
    form.locator("select[data-role=model-select]").select_option(MODEL)
    form.locator("button", has_text="Start training").click()
    page.wait_for_url("**/training/*/")
    model_url = page.url
    shot(page, "training")  # README: a training while it runs
    wait_for_jobs_to_end(page)
    # The held-out evaluation follows the training on its own; the page shows its panel, then its results.
    page.goto(model_url)
    wait_for_jobs_to_end(page)
    page.goto(model_url)
    assert page.locator("[data-role=heldout] table").count() == 1, page.inner_text("[data-role=heldout]")
    assert page.locator("[data-role=heldout-report]").count() == 1
    assert_nothing_stale(page, "trained and evaluated")
    shot(page, "job")  # README: a finished run, what it learned

    # The report, then the playground from the model page.
    page.locator("[data-role=heldout-report]").click()
    page.wait_for_url("**/benchmarks/heldout/*/")
    assert page.locator(f"a[href='{model_url.removeprefix(server)}']").count() >= 1  # the report leads back
    page.goto(model_url)
    page.locator("[data-role=playground-link]").click()
    page.wait_for_selector("[data-role=playground][data-ready=true]", timeout=30000)
    page.fill("[data-role=max_tokens]", "32")
    page.fill("[data-role=prompt]", "Where is the Lumen Valley observatory?")
    page.click("[data-role=send]")
    for column in range(page.locator("[data-role=column]").count()):
        page.wait_for_selector(f"[data-role=column][data-column='{column}'][data-state=done]", timeout=PATIENCE_S * 1000)
    assert page.locator("[data-role=column][data-column='0'] [data-role=answer]").inner_text().strip()
    shot(page, "playground")  # README: the tuned model answers

    # A GGUF export: the buttons hide while it runs and come back without a reload; the file is listed.
    page.goto(model_url)
    page.locator("[data-role=export-gguf]").click()
    page.wait_for_url(model_url)
    wait_for_jobs_to_end(page)
    page.goto(model_url)
    assert page.locator("[data-role=export-buttons]").is_visible()
    names = page.eval_on_selector_all("[data-role=output-download]", "(links) => links.map((a) => a.dataset.output)")
    assert any("gguf" in name for name in names), names
    assert_nothing_stale(page, "exported")

    # Back on the dashboard: the new model and every job, all ended, none with a stale word.
    page.goto(f"{server}/")
    assert page.locator(f"a[href='{model_url.removeprefix(server)}']").count() >= 1
    assert_nothing_stale(page, "dashboard at the end")
    shot(page, "dashboard")  # README: the dashboard
