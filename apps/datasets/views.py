from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.datasets.forms import DatasetForm, UploadForm
from apps.datasets.selectors import dataset_get_for_user, dataset_list_for_user, qa_pairs_for_dataset
from apps.datasets.services import dataset_create, document_upload, qa_generate_start
from apps.training.forms import TrainingOptionsForm
from apps.training.services import finetune_create_from_dataset


@login_required
def dataset_list(request):
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        dataset = dataset_create(owner=request.user, **form.cleaned_data)
        return redirect("datasets:detail", code=dataset.code)
    page = Paginator(dataset_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "datasets/dataset_list.html", {"page": page, "form": form})


@login_required
def dataset_detail(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    pairs = Paginator(qa_pairs_for_dataset(dataset=dataset), 25).get_page(request.GET.get("page"))
    return render(request, "datasets/dataset_detail.html", {
        "dataset": dataset, "documents": dataset.documents.select_related("job"), "page": pairs,
        "upload_form": UploadForm(), "train_form": TrainingOptionsForm(),
    })


@require_POST
@login_required
def document_upload_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose at least one file to upload.")
        return redirect("datasets:detail", code=dataset.code)
    for uploaded_file in form.cleaned_data["files"]:
        try:
            document_upload(dataset=dataset, uploaded_file=uploaded_file)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.info(request, f"'{uploaded_file.name}' uploaded; its text is being extracted.")
    return redirect("datasets:detail", code=dataset.code)


@require_POST
@login_required
def generate_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    try:
        job = qa_generate_start(dataset=dataset)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("datasets:detail", code=dataset.code)
    return redirect("jobs:detail", code=job.code)


@require_POST
@login_required
def train_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    form = TrainingOptionsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the training settings: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("datasets:detail", code=dataset.code)
    try:
        finetune = finetune_create_from_dataset(owner=request.user, dataset=dataset, base_model=form.cleaned_data["base_model"],
                                   method=form.cleaned_data["method"], options=form.options())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("datasets:detail", code=dataset.code)
    return redirect("training:detail", code=finetune.code)
