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
from apps.prompts.forms import OptimizedPromptForm, SavedPromptForm
from apps.prompts.models import OptimizedPrompt, PromptCandidate
from apps.prompts.selectors import (
    optimized_prompt_candidates,
    optimized_prompt_get_for_user,
    optimized_prompt_list_for_user,
    saved_prompt_get_for_user,
    saved_prompt_list_for_user,
)
from apps.prompts.services import (
    optimized_prompt_create,
    saved_prompt_create,
    saved_prompt_delete,
    saved_prompt_from_run,
    saved_prompt_update,
)


@login_required
def run_list(request):
    page = Paginator(optimized_prompt_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "prompts/run_list.html", {"page": page,
                                                     "saved_count": saved_prompt_list_for_user(user=request.user).count()})


@login_required
def run_create(request):
    versions = list(dataset_version_list_for_user(user=request.user)[:200])
    form = OptimizedPromptForm(request.POST or None, user=request.user, versions=versions)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = None
            if data["source"] == OptimizedPrompt.Source.VERSION and data["version"]:
                version = dataset_version_get_for_user(user=request.user, code=data["version"])
            run = optimized_prompt_create(
                owner=request.user, name=data["name"], source=data["source"], version=version,
                task_model=data["task_model"], task_local_model=data["task_local_model"],
                reflection_model=data["reflection_model"], reflection_local_model=data["reflection_local_model"],
                metric=data["metric"], budget=data["budget"], seed_prompt=data["seed_prompt"], settings=form.settings())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Prompt optimization queued; its candidates appear below as they are scored.")
            return redirect("prompts:detail", code=run.code)
    return render(request, "prompts/run_form.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def run_detail(request, code):
    run = optimized_prompt_get_for_user(user=request.user, code=code)
    candidates, front, after = optimized_prompt_candidates(run=run)
    for candidate in candidates:
        candidate.on_front = candidate.index in front
    # What the live table and chart start from (static/prompts/run.js); the job's events after `after` add the rest.
    live = {"job": str(run.job.code) if run.job else None, "after": after, "front": front,
            "points": [{"index": c.index, "val_score": c.val_score, "calls_used": c.calls_used} for c in candidates
                       if c.val_score is not None],
            "statuses": dict(PromptCandidate.Status.choices)}
    return render(request, "prompts/run_detail.html", {"run": run, "candidates": candidates, "live": live})


@login_required
@require_POST
def run_save(request, code):
    run = optimized_prompt_get_for_user(user=request.user, code=code)
    index = request.POST.get("index")
    try:
        prompt = saved_prompt_from_run(run=run, name=request.POST.get("name", ""),
                                       index=int(index) if index not in (None, "") else None)
    except (ValidationError, ValueError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", ["Choose a candidate by its number."])))
        return redirect("prompts:detail", code=run.code)
    messages.success(request, f"Saved as “{prompt.name}”. Use it in the playground, benchmarks and training.")
    return redirect("prompts:saved-detail", code=prompt.code)


@login_required
def saved_list(request):
    form = SavedPromptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            prompt = saved_prompt_create(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved “{prompt.name}”.")
            return redirect("prompts:saved")
    page = Paginator(saved_prompt_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "prompts/saved_list.html", {"page": page, "form": form}, status=400 if form.errors else 200)


@login_required
def saved_detail(request, code):
    prompt = saved_prompt_get_for_user(user=request.user, code=code)
    form = SavedPromptForm(request.POST or None, initial={"name": prompt.name, "text": prompt.text})
    if request.method == "POST" and form.is_valid():
        try:
            saved_prompt_update(prompt=prompt, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("prompts:saved-detail", code=prompt.code)
    return render(request, "prompts/saved_detail.html", {"prompt": prompt, "form": form},
                  status=400 if form.errors else 200)


@login_required
@require_POST
def saved_delete(request, code):
    prompt = saved_prompt_get_for_user(user=request.user, code=code)
    saved_prompt_delete(prompt=prompt)
    messages.success(request, f"Deleted “{prompt.name}”.")
    return redirect("prompts:saved")
