"""Reads of the evaluation app. Every access to a run goes through the owner's selectors (404 for anyone else)."""
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.core.models import Job
from apps.evaluation.models import BenchmarkItem, BenchmarkRun


def benchmark_run_list_for_user(*, user, benchmark: str | None = None) -> QuerySet[BenchmarkRun]:
    runs = BenchmarkRun.objects.filter(owner=user).select_related("job", "finetune")
    return runs.filter(benchmark=benchmark) if benchmark else runs


def benchmark_run_get_for_user(*, user, code) -> BenchmarkRun:
    """The user's benchmark run; 404 for anyone else."""
    try:
        return BenchmarkRun.objects.select_related("job", "finetune").get(owner=user, code=code)
    except (BenchmarkRun.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such benchmark run.")


def benchmark_item_list(*, run: BenchmarkRun, correct: bool | None = None) -> QuerySet[BenchmarkItem]:
    items = run.items.all()
    return items if correct is None else items.filter(correct=correct)


def benchmark_runs_for_comparison(*, user, codes: list[str], benchmark: str | None = None) -> list[BenchmarkRun]:
    """The runs to compare: the given ones (404 if any is not the user's), or else the user's 20 most recent
    finished runs of `benchmark`."""
    if codes:
        return [benchmark_run_get_for_user(user=user, code=code) for code in dict.fromkeys(codes)]
    if not benchmark:
        return []
    return list(benchmark_run_list_for_user(user=user, benchmark=benchmark)
                .filter(job__status=Job.Status.SUCCEEDED).order_by("-created_at")[:20])


def group_figures(group: dict | None) -> dict | None:
    """One report group's headline figures: {"n", "token_f1": {"base", "tuned"}, "exact_match": {...}}."""
    if not group:
        return None
    return {"n": group["n"], **{metric: {"base": round(group["base"][metric], 4), "tuned": round(group["tuned"][metric], 4)}
                                for metric in ("token_f1", "exact_match")}}
