"""Celery tasks. Each is thin: load the row, call its app's worker side (`apps.<app>.jobs`), which runs the engine, and
return its result."""
import time

from django.conf import settings

from apps.core.models import Job
from apps.core.services import jobs_reap
from garage.celery import app
from workers.common.errors import Cancelled
from workers.jobs import job_task


# The extraction process is killed at GARAGE_EXTRACT_TIME_LIMIT; the task's own limit leaves room for the
# process to start and for chunking and saving afterwards.
@job_task(Job.Kind.EXTRACT, soft_time_limit=settings.GARAGE_EXTRACT_TIME_LIMIT + 120)
def extract(job, reporter):
    from apps.datasets.jobs import document_extract
    from apps.datasets.models import Document

    return document_extract(document=Document.objects.get(pk=job.config["document"]), reporter=reporter)


@job_task(Job.Kind.GENERATE)
def generate(job, reporter):
    """Make QA pairs with the generator in the job's config. Runs on queue `default`, or `gpu` for a local
    model (the queue is chosen when the job is created). Side effects: see qa_generate (external requests
    and audit rows for an endpoint; the dataset's generated pairs replaced)."""
    from apps.datasets.jobs import qa_generate
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.get(pk=job.config["dataset"])
    options = job.config if "backend" in job.config else None  # jobs queued before generators were chosen
    return qa_generate(dataset=dataset, max_pairs=job.config.get("max_pairs"), options=options, job=job, reporter=reporter)


@job_task(Job.Kind.CURATE, soft_time_limit=3600)
def curate(job, reporter):
    from apps.datasets.jobs import dataset_curate
    from apps.datasets.models import Dataset

    return dataset_curate(dataset=Dataset.objects.get(pk=job.config["dataset"]), options=job.config.get("options", {}),
                          reporter=reporter, job=job)


@job_task(Job.Kind.IMPORT, soft_time_limit=1800)
def import_examples(job, reporter):
    """Import training examples from a stored file or a Hub dataset (queue `default`). Side effects: see
    apps.datasets.jobs.dataset_import_run (pairs created; the file's Document marked ready or failed)."""
    from apps.datasets.jobs import dataset_import_run
    from apps.datasets.models import Dataset

    return dataset_import_run(dataset=Dataset.objects.get(pk=job.config["dataset"]), job_config=job.config, reporter=reporter)


@job_task(Job.Kind.TRAIN)
def train(job, reporter):
    from apps.training.models import FineTune
    from apps.training.jobs import finetune_run

    return finetune_run(finetune=FineTune.objects.get(job=job), reporter=reporter)


@job_task(Job.Kind.EXPORT)
def export(job, reporter):
    """Make a fine-tune's merged model, GGUF files and model card (queue `gpu`). Side effects: see
    apps.training.jobs.finetune_export_run (files under the fine-tune's exports/ folder, FineTune.outputs updated)."""
    from apps.training.jobs import finetune_export_run
    from apps.training.models import FineTune

    return finetune_export_run(finetune=FineTune.objects.get(pk=job.config["finetune"]), kinds=job.config["kinds"],
                               reporter=reporter)


@job_task(Job.Kind.PUSH, soft_time_limit=6 * 3600)
def push(job, reporter):
    """Push a fine-tune's output with its model card to the Hugging Face Hub (queue `default`). The owner's token
    is decrypted here, in the worker. Side effects: see apps.hub.jobs.hub_push_run (a repository created, one
    commit on the Hub)."""
    from apps.hub.jobs import hub_push_run

    return hub_push_run(job=job, reporter=reporter)


@job_task(Job.Kind.BENCHMARK)
def benchmark(job, reporter):
    """Run a GSM8K or AIME benchmark of one model (queue `gpu`). Side effects: see
    apps.evaluation.jobs.benchmark_run_execute (the run's per-problem rows and results replaced)."""
    from apps.evaluation.jobs import benchmark_run_execute
    from apps.evaluation.models import BenchmarkRun

    try:
        return benchmark_run_execute(run=BenchmarkRun.objects.get(pk=job.config["benchmark_run"]), reporter=reporter)
    finally:
        from workers.engine.inference import clear_cache

        clear_cache()  # this gpu worker may train next: leave its memory free


@job_task(Job.Kind.EVALUATE)
def evaluate(job, reporter):
    """Answer a fine-tune's held-out questions with its base and tuned models and score them (queue `gpu`). Side
    effects: see apps.evaluation.jobs.heldout_evaluation_run (report rows replaced, finetune.metrics["evaluation"]
    written, judge requests audited)."""
    from apps.evaluation.jobs import heldout_evaluation_run
    from apps.evaluation.models import HeldoutEvaluation

    return heldout_evaluation_run(evaluation=HeldoutEvaluation.objects.get(pk=job.config["heldout_evaluation"]),
                                  reporter=reporter)


@job_task(Job.Kind.GRPO)
def grpo(job, reporter):
    """Run a GRPO training run, or a reward preview whose completions the base model writes (queue `gpu`).
    Side effects: see apps.rl.jobs.grpo_run_execute and reward_preview_execute."""
    from apps.rl.jobs import grpo_run_execute, reward_preview_execute
    from apps.rl.models import GrpoRun, RewardPreview

    if "reward_preview" in job.config:
        return reward_preview_execute(preview=RewardPreview.objects.get(pk=job.config["reward_preview"]),
                                      reporter=reporter, job=job)
    return grpo_run_execute(run=GrpoRun.objects.get(pk=job.config["grpo_run"]), reporter=reporter)


@job_task(Job.Kind.OPTIMIZE_PROMPT, soft_time_limit=6 * 3600)
def optimize_prompt(job, reporter):
    """Evolve a system prompt with reflective prompt evolution (queue `default` for endpoints, `gpu` when a model is
    local). Side effects: see apps.prompts.jobs.optimized_prompt_execute (candidate rows, the best prompt)."""
    from apps.prompts.jobs import optimized_prompt_execute
    from apps.prompts.models import OptimizedPrompt

    return optimized_prompt_execute(run=OptimizedPrompt.objects.get(pk=job.config["optimized_prompt"]), reporter=reporter)


@job_task(Job.Kind.SLEEP)
def sleep(job, reporter):
    """A diagnostic job: `steps` steps of `seconds` each, reporting progress and a metric per step.
    Used by the latency benchmarks and by tests of the job system itself."""
    steps, seconds = int(job.config.get("steps", 10)), float(job.config.get("seconds", 0.1))
    reporter.phase("sleeping", f"{steps} steps")
    for step in range(1, steps + 1):
        if reporter.should_stop():
            raise Cancelled()
        time.sleep(seconds)
        reporter.metric(step=step, loss=1.0 / step, sent_at=time.time())
        reporter.progress(step / steps, f"Step {step} of {steps}")
    return {"steps": steps}


# Queue `inference` (settings.GARAGE_INFERENCE_QUEUE), apart from `gpu`: a training holds a gpu worker for hours,
# and chat answers must not wait behind it. Not a job: nothing is stored, and a lost request is not redelivered
# (acks_late off) because its reader has given up by then.
@app.task(name="playground.generate", ignore_result=True, acks_late=False, soft_time_limit=900)
def inference_generate(**request):
    """Answer one playground or /v1/chat/completions request, streaming pieces to its reply channel.
    Side effects: see apps.playground.jobs.inference_run."""
    from apps.playground.jobs import inference_run

    inference_run(**request)


@app.task(name="core.reap_jobs", ignore_result=True)
def reap_jobs():
    """Fail or resume jobs whose worker died, send again the messages the broker lost, and dispatch waiting GPU jobs.
    Routed to queue `control` (garage.celery), whose worker runs nothing long."""
    from apps.core.scheduling import gpu_dispatch

    reaped = jobs_reap()
    gpu_dispatch()  # also a safety net: GPU jobs left waiting by a lost message or a crash get their turn
    return reaped
