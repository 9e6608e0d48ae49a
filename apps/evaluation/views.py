import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header

from apps.evaluation.forms import BenchmarkRunForm
from apps.evaluation.models import BenchmarkRun
from apps.evaluation.selectors import (benchmark_item_list, benchmark_run_get_for_user, benchmark_run_list_for_user,
                                       benchmark_runs_for_comparison)
from apps.evaluation.services import benchmark_run_create
from apps.prompts.selectors import saved_prompt_apply, saved_prompt_choices, saved_prompt_get_for_user
from apps.training.selectors import finetune_get_for_user

ITEM_FILTERS = {"all": None, "correct": True, "incorrect": False}


@login_required
def run_list(request):
    page = Paginator(benchmark_run_list_for_user(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "evaluation/run_list.html", {"page": page})


@login_required
def run_create(request):
    initial = {}
    if request.GET.get("finetune"):
        initial["model"] = f"finetune:{request.GET['finetune']}"
    if request.GET.get("prompt"):  # from a saved prompt's page; a stranger's code answers 404
        initial["saved_prompt"] = str(saved_prompt_get_for_user(user=request.user, code=request.GET["prompt"]).code)
    form = BenchmarkRunForm(request.POST or None, user=request.user, initial=initial,
                            saved_prompts=saved_prompt_choices(user=request.user))
    if request.method == "POST" and form.is_valid():
        kind, value = form.model_choice()
        try:
            finetune = finetune_get_for_user(user=request.user, code=value) if kind == "finetune" else None
            settings = form.settings()
            settings["system_prompt"] = saved_prompt_apply(user=request.user, code=form.cleaned_data["saved_prompt"],
                                                           system_prompt=settings.get("system_prompt") or "")
            run = benchmark_run_create(owner=request.user, benchmark=form.cleaned_data["benchmark"],
                                       base_model=value if kind == "base" else "", finetune=finetune,
                                       settings=settings, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Benchmark started; its progress shows below.")
            return redirect("evaluation:detail", code=run.code)
    status = 400 if request.method == "POST" else 200
    return render(request, "evaluation/run_form.html", {"form": form}, status=status)


@login_required
def run_detail(request, code):
    run = benchmark_run_get_for_user(user=request.user, code=code)
    show = request.GET.get("show", "all")
    if show not in ITEM_FILTERS:
        show = "all"
    items = Paginator(benchmark_item_list(run=run, correct=ITEM_FILTERS[show]), 25).get_page(request.GET.get("page"))
    others = benchmark_run_list_for_user(user=request.user, benchmark=run.benchmark).exclude(pk=run.pk)[:10]
    return render(request, "evaluation/run_detail.html", {"run": run, "items": items, "show": show, "others": others,
                                                          "filters": list(ITEM_FILTERS)})


@login_required
def run_items_download(request, code):
    """Every problem of the run as JSON lines (question, reference, completion, extracted, formatted, correct)."""
    run = benchmark_run_get_for_user(user=request.user, code=code)

    def lines():
        for item in benchmark_item_list(run=run).iterator(chunk_size=500):
            yield json.dumps({"index": item.index, "id": item.problem_id, "question": item.question,
                              "reference": item.reference, "completion": item.completion, "extracted": item.extracted,
                              "formatted": item.formatted, "correct": item.correct}, ensure_ascii=False) + "\n"

    response = StreamingHttpResponse(lines(), content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"benchmark-{run.benchmark}-{run.code}.jsonl")
    return response


CHART_WIDTH = 420  # pixels of a 100% bar


def _chart_rows(runs: list[BenchmarkRun]) -> list[dict]:
    rows = []
    for index, run in enumerate(runs):
        results = run.results or {}
        accuracy, format_rate = results.get("accuracy"), results.get("format_rate")
        y = 26 + 44 * index  # each run: an accuracy bar and a thinner format bar under it
        rows.append({"run": run, "label": str(run)[:60], "accuracy": accuracy, "format_rate": format_rate,
                     "y": y, "y_label": y + 14,
                     "accuracy_px": round((accuracy or 0) * CHART_WIDTH), "format_px": round((format_rate or 0) * CHART_WIDTH),
                     "done": accuracy is not None})
    return rows


@login_required
def compare(request):
    """Several runs on one benchmark in one table and chart: ?runs=<code>&runs=<code>, or ?benchmark=gsm8k for the
    user's recent finished runs of that benchmark."""
    codes = request.GET.getlist("runs")
    benchmark = request.GET.get("benchmark") or ("" if codes else BenchmarkRun.Benchmark.GSM8K)
    runs = benchmark_runs_for_comparison(user=request.user, codes=codes, benchmark=benchmark)
    error = ""
    if len({run.benchmark for run in runs}) > 1:
        error = "These runs are on different benchmarks; choose runs of one benchmark to compare them."
    rows = _chart_rows(runs) if not error else []
    chosen = runs[0].benchmark if runs and not error else benchmark
    return render(request, "evaluation/compare.html", {
        "rows": rows, "error": error, "benchmark": chosen, "chart_width": CHART_WIDTH,
        "chart_height": 30 + 44 * len(rows), "benchmarks": BenchmarkRun.Benchmark.choices,
    }, status=400 if error else 200)
