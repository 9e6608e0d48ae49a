"""Document → model in one go: a parent job whose steps (extract, generate, train) are child jobs.

Each step's task ends its own job; when it does, `job_finished` moves the pipeline on to the next step.
The parent job mirrors the steps' progress (see workers.jobs.JobReporter), so one panel shows it all."""
import logging
import traceback

from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from apps.core.models import Job, JobEvent
from apps.core.services import job_enqueue, job_finish
from apps.core.signals import job_finished
from apps.datasets.models import Dataset
from apps.datasets.services import dataset_create, document_upload, qa_generate_start
from apps.training.models import FineTune
from apps.training.services import finetune_create_from_dataset, finetune_options

# Each step's share of the pipeline's progress bar: training dominates the time.
logger = logging.getLogger(__name__)

SPANS = {Job.Kind.EXTRACT: [0.0, 0.05], Job.Kind.GENERATE: [0.05, 0.1], Job.Kind.TRAIN: [0.1, 1.0]}


def pipeline_start(*, owner, files, name: str, base_model: str, method: str = FineTune.Method.LORA,
                   options: dict | None = None, dataset: Dataset | None = None) -> Job:
    """Create a dataset from `files` (or add them to `dataset`) and run extraction, generation and training.

    Side effects: stores the files, creates the dataset, the pipeline job and its extraction jobs.
    Raises ValidationError (nothing is kept) when a file is rejected."""
    if not files:
        raise ValidationError("Choose at least one document.")
    finetune_options(options or {})  # bad training options (a too-long system prompt) fail now, not after extraction
    with transaction.atomic():
        dataset = dataset or dataset_create(owner=owner, name=name)
        pipeline = Job.objects.create(
            owner=owner, kind=Job.Kind.PIPELINE, status=Job.Status.RUNNING, started_at=timezone.now(),
            title=f"Document to model: {dataset.name}", phase="extracting",
            config={"dataset": dataset.pk, "base_model": base_model, "method": method, "options": options or {}},
        )
        JobEvent.objects.create(job=pipeline, type=JobEvent.Type.STATUS, data={"status": pipeline.status, "message": "Started"})
        for uploaded_file in files:
            document = document_upload(dataset=dataset, uploaded_file=uploaded_file, parent=pipeline, start=False)
            _mark_span(document.job, Job.Kind.EXTRACT)
            job_enqueue(document.job)
    return pipeline


@receiver(job_finished)
def pipeline_advance(sender, job: Job, **kwargs) -> None:
    """Start the pipeline's next step after one ended, or end the pipeline. A failure to start the next step
    ends the pipeline with a readable error instead of leaving it running with nothing to run."""
    try:
        _advance(job)
    except Exception as exc:
        logger.exception("Pipeline %s could not start its next step", job.parent_id)
        if job.parent is not None:
            message = " ".join(exc.messages) if isinstance(exc, ValidationError) else "The next step could not start."
            job_finish(job=job.parent, status=Job.Status.FAILED, error=traceback.format_exc(), error_message=message)


def _advance(job: Job) -> None:
    parent = job.parent
    if parent is None or parent.kind != Job.Kind.PIPELINE or parent.is_final:
        return
    parent.refresh_from_db()
    if parent.is_final:
        return
    if job.status != Job.Status.SUCCEEDED:
        status = Job.Status.CANCELLED if job.status == Job.Status.CANCELLED else Job.Status.FAILED
        job_finish(job=parent, status=status, error=job.error,
                   error_message=f"{job.title}: {job.error_message}" if job.error_message else "")
        return
    if parent.cancel_requested_at:
        job_finish(job=parent, status=Job.Status.CANCELLED)
        return
    dataset = Dataset.objects.get(pk=parent.config["dataset"])
    # In a transaction, so the next step's task is sent (on commit) only after its span is recorded.
    with transaction.atomic():
        if job.kind == Job.Kind.EXTRACT:
            if parent.children.filter(kind=Job.Kind.EXTRACT).exclude(status=Job.Status.SUCCEEDED).exists():
                return  # other documents are still being extracted
            _mark_span(qa_generate_start(dataset=dataset, parent=parent), Job.Kind.GENERATE)
            return
        if job.kind == Job.Kind.GENERATE:
            finetune = finetune_create_from_dataset(owner=parent.owner, dataset=dataset, note="Frozen by the pipeline", base_model=parent.config["base_model"],
                                       method=parent.config["method"], options=parent.config["options"], parent=parent)
            _mark_span(finetune.job, Job.Kind.TRAIN)
            return
    if job.kind == Job.Kind.TRAIN:
        finetune = FineTune.objects.get(job=job)
        result = {**job.result, "dataset": str(dataset.code), "documents": dataset.documents.count(),
                  "qa_pairs": dataset.pairs.included().count(), "finetune": str(finetune.code)}
        job_finish(job=parent, status=Job.Status.SUCCEEDED, result=result)


def _mark_span(job: Job, kind: str) -> None:
    """Give a step its share of the pipeline's bar before its task starts (the task reads it on claim)."""
    job.config = {**job.config, "pipeline_span": SPANS[kind]}
    Job.objects.filter(pk=job.pk).update(config=job.config)
