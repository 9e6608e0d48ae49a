from django.contrib import messages
from django.core.exceptions import ValidationError
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from apps.accounts.throttling import client_ip
from apps.core.health import health_report
from apps.core.metrics import metrics_address_allowed
from apps.core.models import Job
from apps.core.selectors import job_get_for_user, job_list_for_user, job_subject
from apps.core.services import job_cancel, job_retry
from apps.datasets.selectors import dataset_list_for_user
from apps.training.forms import PipelineForm
from apps.training.selectors import finetune_list_for_user


# The dashboard's recent jobs: rendered here, then kept live (and this long) by the user's websocket of jobs.
DASHBOARD_JOBS = 5


@login_required
def dashboard(request):
    return render(request, "core/dashboard.html", {
        "pipeline_form": PipelineForm(user=request.user),
        "jobs": job_list_for_user(user=request.user)[:DASHBOARD_JOBS], "jobs_limit": DASHBOARD_JOBS,
        "datasets": dataset_list_for_user(user=request.user)[:5],
        "finetunes": finetune_list_for_user(user=request.user)[:5],
    })


@login_required
def job_list(request):
    page = Paginator(job_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "core/job_list.html", {"page": page})


@login_required
def job_detail(request, code):
    job = job_get_for_user(user=request.user, code=code)
    finetune = None
    if job.result.get("finetune"):
        from apps.training.selectors import finetune_get_for_user

        finetune = finetune_get_for_user(user=request.user, code=job.result["finetune"])
    return render(request, "core/job_detail.html", {
        "job": job, "children": job.children.order_by("created_at"), "finetune": finetune,
        "subject": job_subject(job=job),
    })


def _back(request, job):
    """Back to the page the button was on (its panel sends `next`), else to the job's page; never to another site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("jobs:detail", code=job.code)


@require_POST
@login_required
def job_cancel_view(request, code):
    job = job_cancel(job=job_get_for_user(user=request.user, code=code))
    messages.info(request, "The job was cancelled." if job.is_final else "Cancelling: the job stops at its next step.")
    return _back(request, job)


@require_POST
@login_required
def job_retry_view(request, code):
    job = job_get_for_user(user=request.user, code=code)
    if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        messages.error(request, "Only failed or cancelled jobs can be retried.")
    else:
        try:
            job_retry(job=job)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.info(request, "The job was queued again.")
    return _back(request, job)


@never_cache
@require_safe
def healthz(request):
    """For load balancers and uptime checks, without signing in: 200 while the site can serve (status "ok", or
    "degraded" when a queue has no worker), 503 when it cannot (apps.core.health.health_report)."""
    report, healthy = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


@never_cache
@require_safe
def metrics(request):
    """Prometheus's scrape, for signed-in staff and, without signing in, for the addresses of
    GARAGE_METRICS_ALLOWED_IPS; 404 to anyone else, as for anything that is not theirs (apps.core.metrics)."""
    if not (request.user.is_staff or metrics_address_allowed(client_ip(request))):
        raise Http404("No such page.")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
