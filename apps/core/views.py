from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.models import Job
from apps.core.selectors import job_get_for_user, job_list_for_user, job_queue_position
from apps.core.services import job_cancel, job_retry
from apps.datasets.selectors import dataset_list_for_user
from apps.training.forms import PipelineForm
from apps.training.selectors import finetune_list_for_user


@login_required
def dashboard(request):
    return render(request, "core/dashboard.html", {
        "pipeline_form": PipelineForm(user=request.user),
        "jobs": job_list_for_user(user=request.user)[:5],
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
        "queue_position": job_queue_position(job=job),
    })


@require_POST
@login_required
def job_cancel_view(request, code):
    job = job_cancel(job=job_get_for_user(user=request.user, code=code))
    messages.info(request, "The job was cancelled." if job.is_final else "Cancelling: the job stops at its next step.")
    return redirect("jobs:detail", code=job.code)


@require_POST
@login_required
def job_retry_view(request, code):
    job = job_get_for_user(user=request.user, code=code)
    if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        messages.error(request, "Only failed or cancelled jobs can be retried.")
    else:
        job_retry(job=job)
        messages.info(request, "The job was queued again.")
    return redirect("jobs:detail", code=job.code)
