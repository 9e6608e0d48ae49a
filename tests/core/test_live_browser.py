"""Live lists of jobs in headless Chromium: the dashboard's recent jobs change, and new ones appear, without reload."""
from apps.core.models import Job
from apps.core.services import job_create, job_finish
from tests.browser import BROWSER_TEST

pytestmark = BROWSER_TEST


def rows(page):
    """The dashboard's job rows, top to bottom: (code, status, badge text, percent)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('[data-role=job-row]')).map((row) =>
        [row.dataset.job, row.dataset.status, row.querySelector('[data-role=job-status]').textContent,
         Number(row.querySelector('[data-role=job-bar]').getAttribute('aria-valuenow'))])""")


def test_it_keeps_the_dashboards_recent_jobs_live(alice, bob, server, worker, browser_context, session_cookie):
    earlier = [job_create(owner=alice, kind=Job.Kind.SLEEP, title=f"Earlier job {i}", start=False) for i in range(5)]
    for job in earlier:
        job_finish(job=job, status=Job.Status.SUCCEEDED)
    browser_context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": server}])
    page = browser_context.new_page()
    page.goto(f"{server}/")
    page.wait_for_function("() => document.querySelector('[data-role=recent-jobs]').dataset.connected === '1'")
    assert [row[0] for row in rows(page)] == [str(job.code) for job in reversed(earlier)]
    page.evaluate("() => { window.notReloaded = true; }")

    # A job started elsewhere (another tab, the API) appears on top, and the oldest row makes room for it.
    job = job_create(owner=alice, kind=Job.Kind.SLEEP, title="Live job", config={"steps": 40, "seconds": 0.1})
    job_create(owner=bob, kind=Job.Kind.SLEEP, title="Bob's job", start=False)  # never on Alice's page
    page.wait_for_function(f"() => document.querySelector('[data-role=job-row]').dataset.job === '{job.code}'")
    seen = []
    while True:
        top = rows(page)[0]
        if not seen or seen[-1] != top:
            seen.append(top)
        if top[1] in Job.FINAL:
            break
        page.wait_for_timeout(50)
    assert seen[-1] == [str(job.code), "succeeded", "Succeeded", 100]
    assert any(status == "running" and 0 < percent < 100 for _, status, _, percent in seen)  # the bar moved live
    percents = [percent for *_, percent in seen]
    assert percents == sorted(percents)
    listed = [row[0] for row in rows(page)]
    assert listed == [str(job.code)] + [str(j.code) for j in reversed(earlier)][:4]
    assert page.locator("[data-role=job-row] a", has_text="Live job").get_attribute("href") == f"/jobs/{job.code}/"
    assert page.evaluate("() => window.notReloaded") is True

    # A reload draws the same from the database.
    page.reload()
    assert [row[:2] for row in rows(page)] == [[code, Job.objects.get(code=code).status] for code in listed]
