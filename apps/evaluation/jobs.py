"""The worker side of the evaluation app's benchmarks: running a benchmark, and what a worker loads for it. Only
`jobs.py` modules import the engine; the web side (apps.evaluation.services) creates the runs and queues their jobs,
which workers.tasks runs here. The held-out evaluation's worker side is apps.evaluation.heldout.jobs, loaded below.

    benchmark_run_execute(run=..., reporter=...)             # a GSM8K or AIME benchmark (workers.tasks.benchmark)
"""
from __future__ import annotations

from pathlib import Path

from django.db import transaction

from apps.core.jobtypes import job_type
from apps.core.models import Job
# The worker loads each app's `jobs` module (apps.core.jobtypes.job_types_load): this one loads the held-out
# evaluation's, whose job type registers itself when imported.
from apps.evaluation.heldout import jobs as heldout_jobs  # noqa: F401
from apps.evaluation.models import BenchmarkItem, BenchmarkRun
from apps.evaluation.services import benchmark_spec
from apps.training.model_choices import FINETUNE_PREFIX
from workers.common.errors import ReadableError
from workers.engine.evaluate.benchmarks import run_benchmark
from workers.engine.inference import clear_cache


# ------------------------------------------------------------------------------------------------ benchmarks

def tiny_benchmark_model() -> Path:
    """The tiny test model for benchmarks: the one every feature without its own uses (built once from GSM8K text)."""
    from apps.training.jobs import tiny_test_model

    return tiny_test_model()


def benchmark_model_ref(*, run: BenchmarkRun):
    """The model a run evaluates, as workers.common.serving.ModelRef, resolved as every feature's model is
    (apps.training.model_choices). Raises ReadableError when it is gone."""
    from apps.training.jobs import model_choice_ref

    if run.finetune is not None:
        return model_choice_ref(user=run.owner, choice=f"{FINETUNE_PREFIX}{run.finetune.code}")
    if not run.base_model:
        raise ReadableError("The fine-tuned model of this run has been deleted.")
    return model_choice_ref(user=run.owner, choice=run.base_model, tiny=tiny_benchmark_model)


def benchmark_run_execute(*, run: BenchmarkRun, reporter, generate_fn=None) -> dict:
    """Run the benchmark engine for a run (through workers.engine.inference.generate unless `generate_fn` is given) and
    store its results. Side effects: replaces the run's items and results; may build the tiny test model under
    the artifacts folder."""
    if generate_fn is None:
        from workers.engine.inference import generate

        ref = benchmark_model_ref(run=run)

        def generate_fn(conversations, **kwargs):
            return generate(ref, conversations, **kwargs)

    result = run_benchmark(benchmark_spec(run=run), generate_fn, reporter)
    items = [BenchmarkItem(run=run, index=item["index"], problem_id=str(item["id"])[:100], question=item["question"],
                           reference=str(item["reference"])[:300], completion=item["completion"],
                           extracted=None if item["extracted"] is None else str(item["extracted"])[:300],
                           formatted=item["formatted"], correct=item["correct"])
             for item in result["items"]]
    summary = {k: result[k] for k in ("n", "correct", "accuracy", "format_rate", "mean_length_chars",
                                      "mean_length_words", "seconds", "few_shot_used")}
    with transaction.atomic():
        run.items.all().delete()  # a retried job starts over
        BenchmarkItem.objects.bulk_create(items, batch_size=500)
        run.results = summary
        run.save(update_fields=["results"])
    return {**summary, "benchmark_run": str(run.code)}


# ---------------------------------------------------------------------------------------------- job types

@job_type(Job.Kind.BENCHMARK)
def benchmark_job(job, reporter):
    """Run a GSM8K or AIME benchmark of one model (queue `gpu`). Side effects: see benchmark_run_execute (the run's
    per-problem rows and results replaced)."""
    try:
        return benchmark_run_execute(run=BenchmarkRun.objects.get(pk=job.config["benchmark_run"]), reporter=reporter)
    finally:
        clear_cache()  # this gpu worker may train next: leave its memory free
