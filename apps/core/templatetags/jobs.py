from django import template

from apps.core.selectors import job_events

register = template.Library()


@register.inclusion_tag("partials/job_progress.html", takes_context=True)
def job_progress(context, job, reload_on_finish=False):
    """Render a job's live progress panel with its full state embedded, so a reload restores everything.
    With reload_on_finish the page reloads when the job ends, to show results rendered from the database."""
    state = {"job": job.snapshot(), "events": [event.as_message() for event in job_events(job=job)]}
    return {"job": job, "job_state": state, "job_state_id": f"job-state-{job.code}", "reload_on_finish": reload_on_finish,
            "csrf_token": context.get("csrf_token"), "request": context.get("request")}
