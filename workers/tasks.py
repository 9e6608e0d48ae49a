"""Celery tasks. Each is thin: load the row, call the service that runs the engine, return its result."""
import time

from apps.core.models import Job
from apps.core.services import jobs_reap
from garage.celery import app
from workers.errors import Cancelled
from workers.jobs import job_task


@job_task(Job.Kind.EXTRACT, soft_time_limit=600)
def extract(job, reporter):
    from apps.datasets.models import Document
    from apps.datasets.services import document_extract

    return document_extract(document=Document.objects.get(pk=job.config["document"]), reporter=reporter)


@job_task(Job.Kind.GENERATE)
def generate(job, reporter):
    from apps.datasets.models import Dataset
    from apps.datasets.services import qa_generate

    dataset = Dataset.objects.get(pk=job.config["dataset"])
    return qa_generate(dataset=dataset, max_pairs=job.config.get("max_pairs"), reporter=reporter)


@job_task(Job.Kind.TRAIN)
def train(job, reporter):
    from apps.training.models import FineTune
    from apps.training.services import finetune_run

    return finetune_run(finetune=FineTune.objects.get(job=job), reporter=reporter)


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


@app.task(name="core.reap_jobs", ignore_result=True)
def reap_jobs():
    return jobs_reap()
