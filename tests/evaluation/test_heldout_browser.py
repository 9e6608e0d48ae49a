"""The held-out report in headless Chromium: from the fine-tune page, run the evaluation again and watch the report
fill in when the worker finishes."""
import os
from pathlib import Path

import pytest
from django.conf import settings

from apps.core.models import Job
from apps.evaluation.models import HeldoutEvaluation
from apps.training.services import finetune_create_from_dataset
from tests.browser import BROWSER_TEST
from tests.conftest import PASSWORD
from tests.evaluation.test_heldout import facts_dataset
from tests.live import wait_for

pytestmark = BROWSER_TEST



@pytest.mark.timeout(300)
def test_it_reruns_the_evaluation_from_the_model_page_and_shows_the_report(alice, server, worker, browser_page):
    finetune = finetune_create_from_dataset(owner=alice, base_model="tiny-gemma3",
                                            dataset=facts_dataset(alice, 30, phrasings=2), options={"max_steps": 60})
    first = wait_for(lambda: HeldoutEvaluation.objects.filter(finetune=finetune).first(), 180, interval=0.3,
                     what="the automatic evaluation")
    wait_for(lambda: Job.objects.get(pk=first.job_id).is_final, 120, interval=0.2, what="the automatic evaluation")

    page = browser_page
    page.goto(f"{server}/accounts/login/")
    page.fill("input[name=username], input[name=email]", alice.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url(f"{server}/")
    page.goto(f"{server}/training/{finetune.code}/")
    section = page.locator("section[data-role=heldout]")
    assert "Token F1" in section.inner_text()
    section.locator("form[data-role=heldout-rerun] button").click()
    page.wait_for_url("**/benchmarks/heldout/*/")
    rerun = HeldoutEvaluation.objects.exclude(pk=first.pk).get(finetune=finetune)
    assert page.url.endswith(f"/benchmarks/heldout/{rerun.code}/")
    # The progress panel reloads the page when the job ends; the report then comes from the database.
    page.locator("table[data-role=metrics]").wait_for(timeout=120_000)
    assert page.locator("section.job").first.get_attribute("data-status") == "succeeded"
    token_f1 = page.locator("tr[data-metric=token_f1] [data-role=delta]")
    assert token_f1.get_attribute("data-direction") == "up" and token_f1.inner_text().startswith("+")
    assert page.locator("section[data-role=most-improved] [data-role=heldout-item]").count() >= 1
    if os.environ.get("GARAGE_SCREENSHOTS"):
        page.screenshot(path=str(Path(settings.VAR_DIR) / "heldout-report.png"), full_page=True)
