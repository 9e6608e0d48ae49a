"""The model picker in headless Chromium: a grouped list with sizes, and "Other…", whose text box appears only when
chosen and whose text is what the form posts; then the model's name, told apart from other runs, renamed on its page."""
import re

import pytest

from apps.training.models import FineTune
from tests.browser import BROWSER_TEST, sign_in
from tests.training.test_names import version_of

pytestmark = BROWSER_TEST


@pytest.mark.timeout(240)
def test_it_picks_from_the_grouped_list_and_from_other(alice, server, worker, browser_page):
    version = version_of(alice)
    page = browser_page
    sign_in(page, server, alice)
    page.goto(f"{server}/datasets/versions/{version.code}/")
    form = page.locator(f"form[action='/datasets/versions/{version.code}/train/']")
    select = form.locator("select[data-role=model-select]")
    other = form.locator("input[data-role=model-other]")

    # A real list, grouped, each real model with its size; the test model last; "Other…" after the groups.
    groups = select.evaluate("s => Array.from(s.querySelectorAll('optgroup')).map(g => "
                             "[g.label, Array.from(g.querySelectorAll('option')).map(o => o.textContent)])")
    titles = [title for title, _ in groups]
    assert titles[-1] == "Test model" and set(titles) <= {"Installed on this server", "Test model",
                                                          "From the Hugging Face Hub (downloaded on first use)"}
    assert all(re.search(r"\d+(\.\d)? [MB] parameters", label) for title, labels in groups if title != "Test model"
               for label in labels)
    assert select.locator("option").last.inner_text().startswith("Other…")
    assert select.input_value() == "tiny-gemma3"  # the server's default model (the suite sets the test model)
    assert other.is_hidden()

    # "Other…" shows the text box, ready to type in; the plan answers for what is typed.
    select.select_option("other")
    other.wait_for(state="visible")
    assert page.evaluate("() => document.activeElement.dataset.role") == "model-other"
    other.fill("/etc/secrets")
    other.press("Tab")
    form.locator("[data-role=plan-summary]").filter(has_text="model folders of this server").wait_for()
    form.locator("button:has-text('Start training')").click()
    page.wait_for_url(f"**/datasets/versions/{version.code}/")
    assert "model folders of this server" in page.content() and not FineTune.objects.exists()

    # Back to a model of the list, the box hides again; any name the server takes may be typed under "Other…".
    select.select_option("tiny-gemma3")
    assert other.is_hidden()
    select.select_option("other")
    other.fill("tiny-gemma3")
    form.locator("button:has-text('Start training')").click()
    page.wait_for_url("**/training/*/")
    finetune = FineTune.objects.get()
    assert finetune.base_model == "tiny-gemma3"
    name = page.locator("[data-role=finetune-name]").inner_text()
    assert name == finetune.name and name.startswith("Lumen Valley v1 · run 1 · tiny test model LoRA · ")

    # Renamed on its page: the heading and the list say the new name.
    page.locator("[data-role=rename] summary").click()
    page.locator("[data-role=rename] input[name=name]").fill("Valley, first try")
    page.locator("[data-role=rename] button").click()
    page.wait_for_url(f"**/training/{finetune.code}/")
    assert page.locator("[data-role=finetune-name]").inner_text() == "Valley, first try"
    page.goto(f"{server}/training/")
    assert page.locator("a", has_text="Valley, first try").count() == 1

