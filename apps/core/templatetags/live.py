"""Template helpers of the live parts of pages."""
from django import template
from django.utils.html import format_html

from apps.core.models import Job

register = template.Library()


@register.simple_tag
def show_when(job, states: str):
    """The attributes of a text or control shown only while `job` has one of `states` (statuses, or "final" for any
    final status; a job that no longer exists counts as final): `data-show-when`, and `hidden` unless it applies now.
    With `data-show-for="<the job's code>"` beside them, the job's panel (garage/job.js) shows and hides the element
    as the job changes, without a reload."""
    wanted = states.split()
    status = job.status if job else None
    shown = status in wanted or ("final" in wanted and (status is None or status in Job.FINAL))
    return format_html('data-show-when="{}"{}', states, "" if shown else " hidden")
