"""Pages of the held-out evaluation: the report of one run, and starting a run again."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.evaluation.heldout.selectors import (
    CHANGES,
    heldout_evaluation_get_for_user,
    heldout_evaluation_list_for_user,
    heldout_item_list,
    heldout_items_changed_most,
)
from apps.evaluation.heldout.services import AUTO, heldout_evaluation_start
from apps.training.selectors import finetune_get_for_user
from workers.common.judge import MAX_RUBRIC

ITEMS_PER_PAGE = 20
METRIC_ROWS = [
    ("token_f1", "Token F1", "Overlap of the words of the answer and the reference (0 to 1; the main measure)."),
    ("exact_match", "Exact match", "Share of answers equal to the reference, ignoring case and spacing."),
    ("rouge_l", "ROUGE-L", "Longest run of the reference's words the answer shares, in order (0 to 1)."),
]


def _row(key, label, help_text, base, tuned) -> dict:
    delta = None if base is None or tuned is None else tuned - base
    return {"key": key, "label": label, "help": help_text, "base": base, "tuned": tuned, "delta": delta,
            "direction": "none" if delta is None else ("up" if delta > 0.0005 else "down" if delta < -0.0005 else "flat")}


def metric_rows(results: dict) -> list[dict]:
    """The before/after table: one row per metric, with the difference and which way it went."""
    if not results:
        return []
    rows = [_row(key, label, help_text, results["base"][key], results["tuned"][key]) for key, label, help_text in METRIC_ROWS]
    judge = results.get("judge")
    if judge:
        rows.append(_row("judge", "LLM judge", "The judge's rating of each answer against the reference (0 to 1).",
                         judge.get("base"), judge.get("tuned")))
    return rows


def judge_choices(*, user) -> list[tuple[str, str]]:
    from apps.providers.forms import provider_choices

    return [(AUTO, "Automatic (your first provider, else the site's endpoint, else none)"), ("none", "No judge"),
            *provider_choices(user=user)]


@login_required
def heldout_detail(request, code):
    evaluation = heldout_evaluation_get_for_user(user=request.user, code=code)
    show = request.GET.get("show", "all")
    if show not in CHANGES:
        show = "all"
    items = Paginator(heldout_item_list(evaluation=evaluation, change=show), ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    improved, worse = heldout_items_changed_most(evaluation=evaluation)
    others = heldout_evaluation_list_for_user(user=request.user, finetune=evaluation.finetune).exclude(pk=evaluation.pk)[:10]
    return render(request, "evaluation/heldout_detail.html", {
        "evaluation": evaluation, "finetune": evaluation.finetune, "results": evaluation.results,
        "rows": metric_rows(evaluation.results), "improved": improved, "worse": worse, "items": items, "show": show,
        "filters": CHANGES, "others": others, "judge_choices": judge_choices(user=request.user), "max_rubric": MAX_RUBRIC,
    })


@require_POST
@login_required
def heldout_start(request, code):
    """Run the held-out evaluation of one of the user's fine-tunes again; `code` is the fine-tune's."""
    finetune = finetune_get_for_user(user=request.user, code=code)
    try:
        evaluation = heldout_evaluation_start(finetune=finetune, judge_provider=request.POST.get("judge_provider", AUTO),
                                              settings={"judge_rubric": request.POST.get("judge_rubric", "")})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("training:detail", code=finetune.code)
    messages.success(request, "Evaluation started; its progress shows below.")
    return redirect("evaluation:heldout", code=evaluation.code)
