"""The whole slice in headless Chromium: sign in, upload, start the pipeline, watch progress, download."""
import time
import zipfile
from pathlib import Path

from tests.browser import BROWSER_TEST
from tests.conftest import PASSWORD

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "lumen-valley-field-guide.md"
pytestmark = BROWSER_TEST



def test_it_goes_from_sign_in_to_downloaded_model(alice, server, worker, browser_page, tmp_path):
    page = browser_page
    page.goto(f"{server}/")
    assert "/accounts/login/" in page.url  # the dashboard asks strangers to sign in
    page.fill("input[name=username], input[name=email]", alice.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url(f"{server}/")

    form = page.locator("form[data-role=pipeline-form]")
    form.locator("input[name=name]").fill("Lumen Valley")
    form.locator("input[name=files]").set_input_files(str(SAMPLE))
    # The test model (the suite never trains a real one): the form then proposes its settings, a rate of 0.01.
    form.locator("select[data-role=model-select]").select_option("tiny-gemma3")
    page.wait_for_function("() => document.querySelector('form[data-role=pipeline-form] input[name=learning_rate]').value"
                           " === '0.01'")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/jobs/*/")

    panel = page.locator("section.job").first
    seen = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        status = panel.get_attribute("data-status")
        value = panel.locator("[data-role=bar]").get_attribute("aria-valuenow")
        if value is not None and (not seen or seen[-1] != int(value)):
            seen.append(int(value))
        if status in {"succeeded", "failed", "cancelled"}:
            break
        page.wait_for_timeout(100)
    assert status == "succeeded", page.locator("[data-role=error]").first.inner_text()
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == 100  # the bar moved forward to the end

    page.wait_for_selector("[data-role=download]", timeout=15000)  # the page re-renders with the result
    assert float(page.locator("[data-role=em-after]").inner_text()) >= 0.9
    with page.expect_download() as download_info:
        page.click("[data-role=download]")
    target = tmp_path / "model.zip"
    download_info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        assert "adapter_model.safetensors" in archive.namelist()
