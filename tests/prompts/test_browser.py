"""A prompt optimization in headless Chromium: its candidates table and Pareto-front chart grow live, on a real worker
against the fake endpoint, and no text about the run's progress outlives the run."""
import threading

import pytest

from apps.core.models import Job
from apps.prompts.models import OptimizedPrompt
from tests.browser import BROWSER_TEST
from tests.fakes.chat_server import PromptTaskResponder, Reply
from tests.prompts.conftest import CAPITALS, make_run

pytestmark = BROWSER_TEST

RUNNING_TEXT = "the seed prompt is being scored first"


class Gated:
    """Holds every request until the test opens the gate (the page is then watching), then answers it as `inner`
    does, a little slowly, so that candidates arrive one by one."""

    def __init__(self, inner, delay=0.1):
        self.inner, self.delay, self.gate = inner, delay, threading.Event()

    def __call__(self, request):
        self.gate.wait(60)
        reply = self.inner(request)
        reply.delay = self.delay
        return reply


def open_run_page(browser_context, server, session_cookie, user, run):
    browser_context.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": server}])
    page = browser_context.new_page()
    page.goto(f"{server}/prompts/{run.code}/")
    page.wait_for_function("() => document.querySelector('[data-role=candidates]').dataset.connected === '1'")
    page.evaluate("() => { window.notReloaded = true; }")
    return page


def visible_text(page, selector):
    return page.evaluate(f"""() => Array.from(document.querySelectorAll('{selector} [data-show-when]'))
        .filter((e) => !e.hidden).map((e) => e.textContent.trim()).join(' ')""")


STATE = """() => ({notReloaded: window.notReloaded === true,
  rows: Array.from(document.querySelectorAll('[data-role=candidate]')).map((r) => Number(r.dataset.index)),
  front: Array.from(document.querySelectorAll('[data-role=candidate]')).filter((r) =>
    !r.querySelector('[data-field=front]').hidden).map((r) => Number(r.dataset.index)),
  chartFront: (Chart.getChart(document.querySelector('[data-role=front-chart]'))?.data.datasets[0].data || [])
    .map((p) => p.index),
  status: document.querySelector('section.job').dataset.status})"""


@pytest.mark.timeout(180)
def test_it_grows_the_candidates_and_the_front_live(alice, alice_version, alice_provider, chat_server, server, worker,
                                                     browser_context, session_cookie):
    # Two proposals that lose on the minibatch, then one that carries the instruction and wins everything.
    responder = Gated(PromptTaskResponder(CAPITALS, proposals=["```\nBe brief.\n```", "```\nBe precise.\n```",
                                                                "```\nYou answer questions. Answer in one word.\n```"]))
    chat_server.responder = responder
    run = make_run(alice, alice_version, alice_provider)
    page = open_run_page(browser_context, server, session_cookie, alice, run)
    assert page.locator("[data-role=candidate]").count() == 0
    assert RUNNING_TEXT in visible_text(page, "[data-role=no-candidates]")
    responder.gate.set()

    states = []
    while True:  # what the page showed, as long as it was the page opened before the run went on
        state = page.evaluate(STATE)
        if not state["notReloaded"]:
            break
        if not states or states[-1] != state:
            states.append(state)
        if state["status"] in Job.FINAL:
            break
        page.wait_for_timeout(50)
    counts = [len(s["rows"]) for s in states]
    assert counts == sorted(counts) and len(set(counts) - {0}) >= 3, counts  # rows were added one by one
    assert states[-1]["rows"] == [0, 1, 2, 3]
    # The seed alone made the front, until the winning prompt replaced it: in the table and on the chart.
    fronts = [s["front"] for s in states if s["rows"]]
    assert fronts[0] == [0] and fronts[-1] == [3]
    assert [s["chartFront"] for s in states if s["rows"]][-1] == [3]

    # Once it has ended the page reloads with the results, drawn from the database.
    run.refresh_from_db()
    page.wait_for_selector("[data-role=best]", timeout=30_000)
    final = page.evaluate(STATE)
    assert final["status"] == run.job.status == "succeeded"
    assert final["rows"] == [c.index for c in run.candidates.all()]
    assert final["front"] == final["chartFront"] == run.result["front"] == [3]


@pytest.mark.timeout(120)
def test_it_says_no_candidate_is_coming_once_the_run_failed(alice, alice_version, alice_provider, chat_server, server,
                                                            worker, browser_context, session_cookie):
    responder = Gated(lambda request: Reply.status(401, "The key was refused."))
    chat_server.responder = responder
    run = make_run(alice, alice_version, alice_provider)
    page = open_run_page(browser_context, server, session_cookie, alice, run)
    assert RUNNING_TEXT in visible_text(page, "[data-role=no-candidates]")
    responder.gate.set()
    page.wait_for_function("() => document.querySelector('section.job').dataset.status === 'failed'")
    page.wait_for_function("() => document.querySelector('[data-role=no-candidates] [data-show-when=final]').hidden"
                           " === false")
    assert visible_text(page, "[data-role=no-candidates]") == "No candidates: the run ended before its seed prompt was scored."
    assert visible_text(page, "[data-role=front-card]") == "No prompt was scored."
    assert page.evaluate("() => window.notReloaded") is True  # it changed live: a failed run has nothing to reload
    assert OptimizedPrompt.objects.get(pk=run.pk).job.status == Job.Status.FAILED
