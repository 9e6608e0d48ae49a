from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.models import Job
from apps.datasets.downloads import jsonl_response
from apps.datasets.forms import CurateForm, DatasetForm, EncodingForm, FreezeForm, ImportForm, PairForm, UploadForm
from apps.datasets.models import Chunk, Document
from apps.datasets.selectors import (
    dataset_get_for_user,
    dataset_list_for_user,
    dataset_pair_counts,
    dataset_version_get_for_user,
    dataset_versions,
    document_excerpt,
    document_get_for_user,
    qa_pair_get_for_user,
    qa_pairs_for_dataset,
    version_examples,
)
from apps.datasets.services import (
    DatasetInUse,
    dataset_create,
    dataset_curate_start,
    dataset_delete,
    dataset_import_file_start,
    dataset_import_hub_start,
    dataset_version_freeze,
    dataset_version_update,
    document_extract_again,
    document_upload,
    qa_generate_start,
    qa_pair_create,
    qa_pair_delete,
    qa_pair_restore,
    qa_pair_update,
    qa_pairs_restore,
)
from apps.training.forms import TrainingOptionsForm
from apps.training.services import finetune_create, finetune_create_from_dataset
from apps.training.selectors import finetune_get_for_user
from workers.common.formats import encoding_label
from workers.common.records import STYLES

PAIRS_PER_PAGE = 25


def _readable(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _back_to(dataset, request=None, anchor: str = ""):
    """Back to the dataset page, keeping the search and page the person was looking at."""
    url = reverse("datasets:detail", kwargs={"code": dataset.code})
    query = request.POST.get("next_query", "") if request is not None else ""
    if query and not query.startswith(("/", "http")) and "\n" not in query:
        url = f"{url}?{query}"
    return redirect(url + anchor)


@login_required
def dataset_list(request):
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = dataset_create(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("datasets:detail", code=dataset.code)
    page = Paginator(dataset_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "datasets/dataset_list.html", {"page": page, "form": form})


def _has_template(name: str) -> bool:
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return False
    return True


@login_required
def dataset_detail(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    search = request.GET.get("q", "").strip()
    set_aside = request.GET.get("show") == "set-aside"
    pairs = Paginator(qa_pairs_for_dataset(dataset=dataset, search=search, set_aside=set_aside),
                      PAIRS_PER_PAGE).get_page(request.GET.get("page"))
    active_jobs = (Job.objects.filter(owner=request.user, config__dataset=dataset.pk,
                                      kind__in=[Job.Kind.GENERATE, Job.Kind.CURATE, Job.Kind.IMPORT])
                   .exclude(status__in=Job.FINAL).order_by("created_at"))
    return render(request, "datasets/dataset_detail.html", {
        "dataset": dataset, "documents": dataset.documents.select_related("job"), "page": pairs,
        "search": search, "set_aside": set_aside, "counts": dataset_pair_counts(dataset=dataset),
        "versions": dataset_versions(dataset=dataset), "active_jobs": active_jobs, "styles": STYLES,
        # Several forms share a page with the generation form: their own id prefixes keep labels pointing right.
        "upload_form": UploadForm(), "train_form": TrainingOptionsForm(auto_id="train_%s", user=request.user, dataset=dataset,
                                         start=_training_start(request)),
        "training_start": request.GET.get("start"), "pair_form": PairForm(auto_id="pair_%s"),
        "curate_form": CurateForm(user=request.user, auto_id="curate_%s"), "import_form": ImportForm(auto_id="import_%s"),
        "freeze_form": FreezeForm(auto_id="freeze_%s"),
        "has_generate_form": _has_template("datasets/_generate_form.html"),
    })


@require_POST
@login_required
def dataset_delete_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    try:
        dataset_delete(dataset=dataset)
    except DatasetInUse as exc:
        messages.error(request, str(exc))
        return redirect(reverse("datasets:detail", kwargs={"code": dataset.code}) + "#delete")
    messages.info(request, f"Deleted the dataset '{dataset.name}'.")
    return redirect("datasets:list")


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
    """Start a generation run with the options of templates/datasets/_generate_form.html (a bare POST, with
    no options, runs the default generator). A provider that is not the user's answers 404."""
    from apps.providers.forms import GenerationForm

    dataset = dataset_get_for_user(user=request.user, code=code)
    options = {}
    if "generator" in request.POST:
        form = GenerationForm(request.POST, user=request.user, dataset=dataset)
        if not form.is_valid():
            messages.error(request, "Check the generation options: " + form.error_text())
            return redirect("datasets:detail", code=dataset.code)
        options = form.options()
    try:
        job = qa_generate_start(dataset=dataset, **options)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("datasets:detail", code=dataset.code)
    return redirect("jobs:detail", code=job.code)


def _training_start(request):
    """The user's tuned model a "train it further" link names (`?start=<code>`), proposed by the training form; 404
    for anyone else's."""
    code = request.GET.get("start")
    return finetune_get_for_user(user=request.user, code=code) if code else None


def _train_from_form(request, *, start, back: str):
    """Read the training form and start a fine-tune with `start(base_model=, method=, options=)`; on bad settings
    go `back` with a readable message. Shared by training on the current pairs and on a frozen version."""
    form = TrainingOptionsForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, "Check the training settings: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect(back)
    try:
        finetune = start(base_model=form.cleaned_data["base_model"], method=form.cleaned_data["method"],
                         options=form.options())
    except ValidationError as exc:
        messages.error(request, _readable(exc))
        return redirect(back)
    return redirect("training:detail", code=finetune.code)


@require_POST
@login_required
def train_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    return _train_from_form(request, back=reverse("datasets:detail", args=[dataset.code]),
                            start=lambda **settings: finetune_create_from_dataset(owner=request.user, dataset=dataset,
                                                                                  **settings))


# ---------------------------------------------------------------------------------------------- pairs


@require_POST
@login_required
def pair_add(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    form = PairForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write both a question and an answer.")
        return _back_to(dataset, request)
    try:
        pair = qa_pair_create(dataset=dataset, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, _readable(exc))
        return _back_to(dataset, request)
    messages.info(request, "Pair added.")
    return _back_to(dataset, request, f"#pair-{pair.pk}")


@login_required
def pair_edit(request, code, pk):
    dataset = dataset_get_for_user(user=request.user, code=code)
    pair = qa_pair_get_for_user(user=request.user, dataset=dataset, pk=pk)
    form = PairForm(request.POST or None, initial={"system": pair.system, "question": pair.question, "answer": pair.answer})
    if request.method == "POST" and form.is_valid():
        try:
            qa_pair_update(pair=pair, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.info(request, "Pair saved.")
            return _back_to(dataset, request, f"#pair-{pair.pk}")
    return render(request, "datasets/pair_edit.html", {"dataset": dataset, "pair": pair, "form": form,
                                                       "next_query": request.GET.get("next_query", "")},
                  status=400 if request.method == "POST" else 200)


@require_POST
@login_required
def pair_delete(request, code, pk):
    dataset = dataset_get_for_user(user=request.user, code=code)
    qa_pair_delete(pair=qa_pair_get_for_user(user=request.user, dataset=dataset, pk=pk))
    messages.info(request, "Pair deleted.")
    return _back_to(dataset, request, "#pairs")


@require_POST
@login_required
def pair_restore(request, code, pk):
    dataset = dataset_get_for_user(user=request.user, code=code)
    qa_pair_restore(pair=qa_pair_get_for_user(user=request.user, dataset=dataset, pk=pk))
    messages.info(request, "Pair put back into the dataset.")
    return _back_to(dataset, request, "#pairs")


@require_POST
@login_required
def pairs_restore(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    restored = qa_pairs_restore(dataset=dataset)
    messages.info(request, f"{restored} pair{'s' if restored != 1 else ''} put back into the dataset.")
    return redirect(reverse("datasets:detail", kwargs={"code": dataset.code}) + "#pairs")


# ---------------------------------------------------------------------------------------------- curation, import, export


@require_POST
@login_required
def curate_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    form = CurateForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, "Check the curation settings: " + "; ".join(
            f"{form.fields[k].label if k in form.fields else ''} {' '.join(v)}".strip() for k, v in form.errors.items()))
        return redirect("datasets:detail", code=dataset.code)
    try:
        job = dataset_curate_start(dataset=dataset, options=form.options())
    except ValidationError as exc:
        messages.error(request, _readable(exc))
        return redirect("datasets:detail", code=dataset.code)
    return redirect("jobs:detail", code=job.code)


@require_POST
@login_required
def import_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, " ".join(form.non_field_errors()) or "Check the import form.")
        return redirect("datasets:detail", code=dataset.code)
    data = form.cleaned_data
    # Both kinds run as a job (a file is parsed by the worker, within the import limits): its page shows the
    # progress and, at the end, how many examples came in or why none did.
    try:
        if data.get("file"):
            job = dataset_import_file_start(dataset=dataset, uploaded_file=data["file"], mapping=form.mapping())
        else:
            job = dataset_import_hub_start(dataset=dataset, dataset_id=data["hub_id"], split=data.get("split") or "train",
                                           config=data.get("hub_config") or "", mapping=form.mapping(), limit=data.get("limit"))
    except ValidationError as exc:
        messages.error(request, _readable(exc))
        return redirect("datasets:detail", code=dataset.code)
    return redirect("jobs:detail", code=job.code)


def _jsonl_response(*, dataset, style: str, version=None):
    if style not in STYLES:
        raise Http404(f"Unknown export style. Choose one of: {', '.join(STYLES)}.")
    return jsonl_response(dataset=dataset, style=style, version=version)


@login_required
def export_view(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    return _jsonl_response(dataset=dataset, style=request.GET.get("style", "messages"))


# ---------------------------------------------------------------------------------------------- versions


@require_POST
@login_required
def version_freeze(request, code):
    dataset = dataset_get_for_user(user=request.user, code=code)
    form = FreezeForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        version = dataset_version_freeze(dataset=dataset, note=note)
    except ValidationError as exc:
        messages.error(request, _readable(exc))
        return redirect(reverse("datasets:detail", kwargs={"code": dataset.code}) + "#versions")
    messages.info(request, f"Froze version {version.number} with {version.example_count} examples.")
    return redirect("datasets:version", code=version.code)


@login_required
def version_detail(request, code):
    version = dataset_version_get_for_user(user=request.user, code=code)
    search = request.GET.get("q", "").strip()
    examples = Paginator(version_examples(version=version, search=search), PAIRS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "datasets/version_detail.html", {
        "version": version, "dataset": version.dataset, "page": examples, "search": search, "styles": STYLES,
        "note_form": FreezeForm(initial={"note": version.note}), "train_form": TrainingOptionsForm(user=request.user, version=version, start=_training_start(request)),
        "training_start": request.GET.get("start"),
        "finetunes": version.finetunes.select_related("job").order_by("-created_at"),
    })


@require_POST
@login_required
def version_note(request, code):
    version = dataset_version_get_for_user(user=request.user, code=code)
    form = FreezeForm(request.POST)
    if form.is_valid():
        dataset_version_update(version=version, note=form.cleaned_data["note"])
        messages.info(request, "Note saved.")
    return redirect("datasets:version", code=version.code)


@login_required
def version_export(request, code):
    version = dataset_version_get_for_user(user=request.user, code=code)
    return _jsonl_response(dataset=version.dataset, version=version, style=request.GET.get("style", "messages"))


@require_POST
@login_required
def version_train(request, code):
    version = dataset_version_get_for_user(user=request.user, code=code)
    return _train_from_form(request, back=reverse("datasets:version", args=[version.code]),
                            start=lambda **settings: finetune_create(owner=request.user, version=version, **settings))


# ---------------------------------------------------------------------------------------------- documents


@login_required
def document_detail(request, code):
    document = document_get_for_user(user=request.user, code=code)
    chunk = None
    if request.GET.get("chunk", "").isdigit():
        chunk = Chunk.objects.filter(document=document, index=int(request.GET["chunk"])).first()
        if chunk is None:
            raise Http404("This document has no such chunk.")
    page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    page = max(1, min(page, document.pages or 1))
    pairs = (document.pairs.included().select_related("chunk").order_by("id") if document.status == Document.Status.READY
             else document.pairs.none())
    return render(request, "datasets/document_detail.html", {
        "document": document, "dataset": document.dataset, "chunk": chunk, "page_number": page,
        "encoding_form": EncodingForm(initial={"encoding": document.encoding_choice}),
        "encoding_label": encoding_label(document.encoding),
        "excerpt": document_excerpt(document=document, chunk=chunk, page=page),
        "page_numbers": range(1, (document.pages or 1) + 1) if (document.pages or 1) > 1 else [],
        "pairs": pairs[:50], "pair_count": pairs.count(), "chunk_count": document.chunks.count(),
    })


@require_POST
@login_required
def document_extract_again_view(request, code):
    """Extract a document again, in the encoding chosen on its page (templates/datasets/document_detail.html)."""
    document = document_get_for_user(user=request.user, code=code)
    form = EncodingForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("Choose one of the encodings offered.")
        document_extract_again(document=document, encoding=form.cleaned_data["encoding"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.info(request, f"'{document.filename}' is being extracted again.")
    return redirect("datasets:document", code=document.code)
