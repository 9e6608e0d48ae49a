from pathlib import PurePosixPath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.selectors import job_list_for_user
from apps.datasets.selectors import dataset_list_for_user
from apps.training.artifacts import artifact_download_response
from apps.training.exports import (finetune_card_text, finetune_export_job_latest, finetune_export_start,
                                   finetune_file_stem, finetune_has_files, finetune_output_list,
                                   finetune_output_relative)
from apps.training.forms import PipelineForm
from apps.training.pipeline import pipeline_start
from apps.training.selectors import (example_lineage, finetune_children, finetune_get_for_user, finetune_lineage,
                                     finetune_list_for_user)
from apps.training.services import finetune_rename


@login_required
def finetune_list(request):
    page = Paginator(finetune_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "training/finetune_list.html", {"page": page})


@login_required
def finetune_detail(request, code):
    finetune = finetune_get_for_user(user=request.user, code=code)
    return render(request, "training/finetune_detail.html", {
        "finetune": finetune, "has_artifact": finetune_has_files(finetune=finetune),
        "outputs": finetune_output_list(finetune=finetune), "card": finetune_card_text(finetune=finetune),
        "export_job": finetune_export_job_latest(finetune=finetune),
        "children": finetune_children(finetune=finetune),
    })


@login_required
def finetune_lineage_view(request, code):
    """Where a model comes from and what came of it: its ancestors back to the base model, the models trained from
    it, its data and its evaluations."""
    finetune = finetune_get_for_user(user=request.user, code=code)
    return render(request, "training/lineage.html", {"finetune": finetune, **finetune_lineage(finetune=finetune)})


@login_required
def example_lineage_view(request, code, position):
    """One example of a frozen version: the models trained (or evaluated) on it, and how each answered it."""
    return render(request, "training/example_lineage.html",
                  example_lineage(user=request.user, version_code=code, position=position))


@require_POST
@login_required
def finetune_rename_view(request, code):
    """Rename the model from its page; the title of its training job follows."""
    finetune = finetune_get_for_user(user=request.user, code=code)
    try:
        finetune_rename(finetune=finetune, name=request.POST.get("name", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Renamed.")
    return redirect("training:detail", code=finetune.code)


@require_POST
@login_required
def finetune_export(request, code):
    """Start an export job for the kinds ticked or named by the button pressed."""
    finetune = finetune_get_for_user(user=request.user, code=code)
    try:
        finetune_export_start(finetune=finetune, kinds=request.POST.getlist("kinds"))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Export started; its progress shows below.")
    return redirect("training:detail", code=finetune.code)


@login_required
def finetune_output_download(request, code, name):
    """One output, to its owner only: the file, or a redirect to a short-lived signed address in the bucket."""
    finetune = finetune_get_for_user(user=request.user, code=code)
    relative = finetune_output_relative(finetune=finetune, name=name)
    return artifact_download_response(relative=relative, missing="This output has not been made yet.",
                                      filename=f"{finetune_file_stem(finetune)}-{PurePosixPath(relative).name}")


@login_required
def finetune_download(request, code):
    """The training zip, to its owner only (see finetune_output_download)."""
    finetune = finetune_get_for_user(user=request.user, code=code)
    return artifact_download_response(relative=finetune.artifact, missing="This model has no files to download yet.",
                                      filename=f"{finetune_file_stem(finetune)}-{PurePosixPath(finetune.artifact).name}")


@require_POST
@login_required
def pipeline_create(request):
    form = PipelineForm(request.POST, request.FILES, user=request.user)
    if form.is_valid():
        try:
            job = pipeline_start(owner=request.user, files=form.cleaned_data["files"], name=form.cleaned_data["name"],
                                 base_model=form.cleaned_data["base_model"], method=form.cleaned_data["method"],
                                 options=form.options())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("jobs:detail", code=job.code)
    messages.error(request, "The pipeline could not start; see the form below.")
    return render(request, "core/dashboard.html", {
        "pipeline_form": form, "jobs": job_list_for_user(user=request.user)[:5],
        "datasets": dataset_list_for_user(user=request.user)[:5], "finetunes": finetune_list_for_user(user=request.user)[:5],
    }, status=400)
