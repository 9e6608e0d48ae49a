import json
from pathlib import PurePosixPath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.datasets.selectors import (
    dataset_version_get_for_user,
    dataset_version_list_for_user,
)
from apps.providers.forms import provider_choices
from apps.rl.models import GrpoRun
from apps.rl.forms import PREVIEW_ROWS, GrpoRunForm, RecipeForm
from apps.rl.selectors import (
    grpo_run_get_for_user,
    grpo_run_history,
    grpo_run_latest_samples,
    grpo_run_list_for_user,
    reward_preview_get_for_user,
    reward_preview_list_for_user,
)
from apps.rl.services import (
    RECIPE_REWARDS,
    RECIPE_SETTINGS,
    grpo_run_download,
    grpo_run_has_files,
    grpo_prompts_read,
    grpo_recipe_create,
    grpo_run_create,
    grpo_source_prompts,
    reward_preview_create,
)
from apps.training.selectors import FINETUNE_PREFIX, finetune_get_for_user
from workers.common.rewards import LIBRARY, describe, validate_specs


def library_json() -> list[dict]:
    """The reward library as the builder script reads it."""
    return [{"type": kind, "label": entry["label"], "description": entry["description"],
             "params": [{"name": name, "kind": kind_, "default": default, "help": help_}
                        for name, (kind_, default, help_) in entry["params"].items()]}
            for kind, entry in LIBRARY.items()]


def _form_page(request, form, status=200):
    return render(request, "rl/run_form.html", {
        "form": form, "library": library_json(), "providers": provider_choices(user=request.user),
        "sample_rows": form.sample_rows(),
    }, status=status)


def _versions(user):
    return list(dataset_version_list_for_user(user=user)[:200])


@login_required
def run_list(request):
    page = Paginator(grpo_run_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    previews = reward_preview_list_for_user(user=request.user)[:5]
    return render(request, "rl/run_list.html", {"page": page, "previews": previews})


@login_required
def run_create(request):
    """The GRPO form: prompts, the reward builder, settings and a preview. ?preview=<code> starts from a preview's
    reward functions and samples."""
    if request.method == "POST":
        form = GrpoRunForm(request.POST, request.FILES, versions=_versions(request.user), user=request.user)
        if form.is_valid():
            try:
                version = _version(request, form)
                run = grpo_run_create(owner=request.user, rewards=form.cleaned_data["rewards"],
                                      source=form.cleaned_data["source"], version=version,
                                      prompts_file=form.cleaned_data.get("prompts_file"),
                                      base_model=form.cleaned_data["base_model"], method=form.cleaned_data["method"],
                                      settings=form.settings(), name=form.cleaned_data["name"])
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "GRPO run queued; its progress shows below.")
                return redirect("rl:detail", code=run.code)
        return _form_page(request, form, status=400)
    initial = {}
    if request.GET.get("preview"):
        preview = reward_preview_get_for_user(user=request.user, code=request.GET["preview"])
        initial["rewards"] = json.dumps(preview.rewards, indent=1)
        for index, sample in enumerate(preview.samples[:PREVIEW_ROWS] if not preview.generated else []):
            for name in ("prompt", "completion", "answer"):
                initial[f"sample_{name}_{index}"] = sample.get(name, "")
        if preview.generated:
            initial.update(base_model=preview.base_model, preview_mode="generate")
    if request.GET.get("start"):  # "Reinforce it" on a model's page: that model is where the run starts
        start = finetune_get_for_user(user=request.user, code=request.GET["start"])
        initial.update(base_model=f"{FINETUNE_PREFIX}{start.code}", name=f"{start.name}, reinforced"[:200])
        if start.version_id:  # its own data's questions are the natural prompts
            initial.update(source=GrpoRun.Source.VERSION, version=str(start.version.code))
    return _form_page(request, GrpoRunForm(initial=initial, versions=_versions(request.user), user=request.user))


def _version(request, form):
    if form.cleaned_data["source"] != "version":
        return None
    if not form.cleaned_data.get("version"):
        raise ValidationError("Choose one of your dataset versions.")
    return dataset_version_get_for_user(user=request.user, code=form.cleaned_data["version"])


@require_POST
@login_required
def preview_create(request):
    """Score the form's reward functions on pasted samples (at once), or on completions the base model writes (a
    short job); then show the scores."""
    form = GrpoRunForm(request.POST, request.FILES, versions=_versions(request.user), user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data.get("preview_mode") == "generate":
                rows = grpo_prompts_read(file=data["prompts_file"]) if data["source"] == "upload" and data.get("prompts_file") else None
                prompts = grpo_source_prompts(source=data["source"], version=_version(request, form), rows=rows)
                preview = reward_preview_create(
                    owner=request.user, rewards=data["rewards"], base_model=data["base_model"], prompts=prompts,
                    count=data.get("preview_count") or 4, temperature=data.get("temperature") or 1.0,
                    max_new_tokens=data.get("max_completion_length") or 128, system_prompt=data.get("system_prompt") or "")
            else:
                preview = reward_preview_create(owner=request.user, rewards=data["rewards"], samples=form.samples())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("rl:preview", code=preview.code)
    return _form_page(request, form, status=400)


@login_required
def preview_detail(request, code):
    preview = reward_preview_get_for_user(user=request.user, code=code)
    names = [spec["name"] for spec in preview.rewards]
    rows = []
    for sample, result in zip(preview.samples, preview.results or []):
        rows.append({"sample": sample, "total": result["total"],
                     "scores": [result["scores"].get(name) for name in names]})
    functions = [{"spec": spec, "label": LIBRARY[spec["type"]]["label"], "what": describe(spec)} for spec in preview.rewards]
    return render(request, "rl/preview_detail.html", {"preview": preview, "rows": rows, "functions": functions})


@login_required
def recipe(request):
    """The reference recipe in one click: Gemma 3 1B Instruct on GSM8K, format and correctness rewards, optional
    judge, then GSM8K benchmarks of base and tuned."""
    form = RecipeForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            run = grpo_recipe_create(owner=request.user, judge=form.cleaned_data["judge"],
                                     provider=form.cleaned_data.get("provider") or "default",
                                     rubric=form.cleaned_data.get("rubric") or "", base_model=form.cleaned_data["base_model"],
                                     settings=form.overrides())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "The reference recipe is queued; its progress shows below.")
            return redirect("rl:detail", code=run.code)
    return render(request, "rl/recipe.html", {
        "form": form, "rewards": [{"spec": s, "what": describe({**_filled(s)})} for s in RECIPE_REWARDS],
        "settings": RECIPE_SETTINGS, "has_providers": bool(form.fields["provider"].choices),
    }, status=400 if request.method == "POST" else 200)


def _filled(spec: dict) -> dict:
    return validate_specs([spec])[0]


@login_required
def run_detail(request, code):
    run = grpo_run_get_for_user(user=request.user, code=code)
    history = grpo_run_history(run=run)
    names = [spec["name"] for spec in run.rewards]
    functions = [{"spec": spec, "label": LIBRARY[spec["type"]]["label"], "what": describe(spec),
                  "result": (run.metrics.get("rewards") or {}).get(spec["name"])} for spec in run.rewards]
    samples = grpo_run_latest_samples(history=history)
    for sample in samples:
        sample["score_list"] = [sample["scores"].get(name) for name in names]
    # The rolling samples travel once, in the samples table; the charts need only the numbers.
    chart = [{k: v for k, v in point.items() if k != "samples"} for point in history]
    return render(request, "rl/run_detail.html", {
        "run": run, "functions": functions, "names": names, "samples": samples, "chart": chart,
        "has_artifact": grpo_run_has_files(run=run),
        "judge": (run.metrics or {}).get("judge") or (history[-1] if history and "judge_calls" in history[-1] else None),
    })


@login_required
def run_download(request, code):
    run = grpo_run_get_for_user(user=request.user, code=code)
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in run.name).strip("-")[:60] or "grpo"
    return grpo_run_download(run=run, filename=f"{slug}-{PurePosixPath(run.artifact).name}")
