"""The no-code reward builder and the live GRPO page in headless Chromium: compose rewards by clicking, preview
them, start a tiny run and watch its charts and samples arrive over the websocket."""
import json
import time

import pytest

from apps.rl.models import GrpoRun, RewardPreview
from tests.browser import BROWSER_TEST, sign_in

pytestmark = BROWSER_TEST


def rewards_json(page):
    return json.loads(page.locator("[data-role=rewards-json]").input_value())


@pytest.mark.timeout(300)
def test_it_composes_previews_and_trains_rewards_without_code(alice, server, worker, browser_page):
    page = browser_page
    sign_in(page, server, alice)
    page.goto(f"{server}/rl/new/")
    cards = page.locator("[data-role=function]")
    assert cards.count() == 2  # the default format and answer-match functions

    # Add a "contains" function by clicking, give it a target and a weight; drop the format function.
    page.select_option("[data-role=add-type]", "contains")
    page.click("[data-role=add-function]")
    new = cards.nth(2)
    assert new.get_attribute("data-type") == "contains"
    new.locator("[data-param=target]").fill("seven")
    new.locator("[data-param=weight]").fill("2")
    new.locator("[data-param=case_sensitive]").check()
    cards.nth(0).locator("[data-role=remove-function]").click()
    specs = rewards_json(page)
    assert [s["type"] for s in specs] == ["answer_match", "contains"]
    assert specs[1]["target"] == "seven" and specs[1]["weight"] == 2 and specs[1]["case_sensitive"] is True

    # Preview on pasted completions: each function's score per completion.
    page.fill("textarea[name=sample_prompt_0]", "3 + 4?")
    page.fill("textarea[name=sample_completion_0]", "It makes seven.\n#### 7")
    page.fill("input[name=sample_answer_0]", "7")
    page.fill("textarea[name=sample_completion_1]", "Seven, I think: 8")
    page.click("[data-role=preview-button]")
    page.wait_for_url("**/rl/previews/*/")
    rows = page.locator("[data-role=score-row]")
    assert rows.count() == 2
    assert rows.nth(0).locator("[data-role=total]").inner_text() == "3.00"
    assert rows.nth(1).locator("[data-role=total]").inner_text() == "0.00"  # "Seven" is not "seven": case-sensitive
    assert RewardPreview.objects.get().rewards[1]["target"] == "seven"

    # Back to the form with those functions, and start a tiny run on GSM8K (the form proposes a real model).
    page.click("[data-role=use-rewards]")
    assert [s["type"] for s in rewards_json(page)] == ["answer_match", "contains"] and cards.count() == 2
    page.select_option("select[name=base_model]", "tiny-gemma3")
    settings = {"max_steps": "6", "num_generations": "4", "prompts_per_step": "2", "max_completion_length": "16",
                "prompt_limit": "16", "warmup_steps": "3", "warmup_learning_rate": "0.01", "learning_rate": "0.001"}
    for name, value in settings.items():
        page.fill(f"input[name={name}]", value)
    page.click("[data-role=start]")
    page.wait_for_url("**/rl/*/")
    run = GrpoRun.objects.get()
    assert run.settings["max_steps"] == 6 and [s["name"] for s in run.rewards] == ["answer_match", "contains"]

    # The charts and the rolling samples fill in live, then the page re-renders with the results.
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and page.locator("[data-role=sample]").count() == 0:
        page.wait_for_timeout(200)
    assert page.locator("[data-role=sample]").count() > 0
    page.wait_for_selector("[data-role=reward-last]", timeout=120_000)
    assert page.locator("[data-role=charts-empty]").is_hidden()
    points = page.evaluate("Chart.getChart(document.querySelector('[data-role=reward-chart]')).data.datasets[0].data.length")
    assert points == 6
    run.refresh_from_db()
    assert run.job.status == "succeeded" and run.metrics["train_steps"] == 6


SAMPLES = """() => ({steps: Array.from(document.querySelectorAll('[data-role=sample]'))
    .map((row) => Number(row.cells[0].textContent)),
  waiting: Array.from(document.querySelectorAll('[data-role=no-samples] [data-show-when]')).filter((e) => !e.hidden)
    .map((e) => e.textContent.trim()),
  status: document.querySelector('section.job').dataset.status})"""

# Records in the tab's sessionStorage (written synchronously, kept across a reload) the steps of the samples shown,
# each time they change on this page load: a last step followed at once by the re-render is not missed by polling.
RECORD_SAMPLE_STEPS = """() => {
  const record = () => {
    const steps = [...new Set(Array.from(document.querySelectorAll('[data-role=sample]'))
      .map((row) => Number(row.cells[0].textContent)))].sort((a, b) => a - b);
    const seen = JSON.parse(sessionStorage.getItem('seenSteps') || '[]');
    if (steps.length && JSON.stringify(seen[seen.length - 1]) !== JSON.stringify(steps)) {
      seen.push(steps);
      sessionStorage.setItem('seenSteps', JSON.stringify(seen));
    }
  };
  window.notReloaded = true;
  new MutationObserver(record).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


@pytest.mark.timeout(300)
def test_it_shows_each_rolling_sample_live_up_to_the_last_step(alice, server, worker, browser_context, session_cookie,
                                                                settings):
    from apps.core.scheduling import gpu_dispatch
    from apps.rl.services import grpo_run_create
    from tests.rl.conftest import REWARDS, jsonl

    settings.GARAGE_GPU_SLOTS = 0  # the run waits in line until the page is open
    prompts = jsonl(*({"prompt": f"{a} + {b}?", "answer": str(a + b)} for a in range(4) for b in range(4)))
    run = grpo_run_create(owner=alice, rewards=REWARDS, source="upload", prompts_file=prompts, base_model="tiny-gemma3",
                          settings={"max_steps": 6, "sample_every": 4, "num_generations": 4, "prompts_per_step": 2,
                                    "max_completion_length": 16, "warmup_steps": 0, "learning_rate": 1e-3})
    browser_context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": server}])
    page = browser_context.new_page()
    page.goto(f"{server}/rl/{run.code}/")
    page.wait_for_function("() => document.querySelector('[data-role=charts]').dataset.connected === '1'")
    page.evaluate(RECORD_SAMPLE_STEPS)
    assert page.evaluate(SAMPLES)["waiting"] == ["Samples appear after the first GRPO step."]
    settings.GARAGE_GPU_SLOTS = 1
    assert gpu_dispatch() == 1

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if page.evaluate("() => window.notReloaded !== true") or page.evaluate(SAMPLES)["status"] in {
                "succeeded", "failed", "cancelled"}:
            break
        page.wait_for_timeout(200)
    seen = page.evaluate("() => JSON.parse(sessionStorage.getItem('seenSteps') || '[]')")
    run.refresh_from_db()
    assert run.job.status == "succeeded", run.job.error_message or run.job.error
    # The first step's samples, those of step 4, and the last step's: each replaced the one before, without reload.
    assert seen == [[1], [4], [6]]
    page.wait_for_selector("[data-role=reward-last]", timeout=30_000)  # then the page re-renders with the results
    assert sorted(set(page.evaluate(SAMPLES)["steps"])) == [6]
