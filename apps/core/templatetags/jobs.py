from django import template

from apps.core.selectors import job_cancel_question, job_events, job_retryable, job_snapshot, job_subject

register = template.Library()


@register.filter
def snapshot(job):
    """A job's state as its live list row draws it (apps.core.selectors.job_snapshot); nothing for no job (the empty
    row that job-list.js copies)."""
    return job_snapshot(job=job) if job else ""


@register.inclusion_tag("partials/job_progress.html", takes_context=True)
def job_progress(context, job, reload_on_finish=False):
    """Render a job's live progress panel with its full state embedded, so a reload restores everything.
    With reload_on_finish the page reloads when the job ends, to show results rendered from the database;
    reload_on_finish="succeeded" reloads only when it succeeded (a failed or cancelled one changes nothing there).
    Cancel and Retry come back to the page the panel is on."""
    state = {"job": job_snapshot(job=job), "events": [event.as_message() for event in job_events(job=job)]}
    request = context.get("request")
    return {"job": job, "state": state["job"], "job_state": state, "job_state_id": f"job-state-{job.code}",
            "reload_on_finish": reload_on_finish, "csrf_token": context.get("csrf_token"), "request": request,
            "back": request.get_full_path() if request else "", "retryable": job_retryable(job=job),
            "cancel_question": "" if job.is_final else job_cancel_question(job=job, subject=job_subject(job=job))}
