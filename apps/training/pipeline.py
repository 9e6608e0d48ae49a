"""Document → model in one go: a parent job whose steps (extract, generate, train) are child jobs.

Each step's task ends its own job; when it does, pipeline_advance (an `after` of the steps' job types) moves the
pipeline on to the next step.
The parent job mirrors the steps' progress (see workers.jobs.JobReporter), so one panel shows it all."""
import logging
import traceback

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.models import Job, JobEvent
from apps.core.services import job_enqueue, job_event_add, job_finish
from apps.datasets.models import Dataset
from apps.datasets.services import dataset_create, document_upload, qa_generate_start
from apps.evaluation.heldout.services import heldout_evaluation_after_training
from apps.training.models import FineTune
from apps.training.plans import plan_options, training_plan
from apps.training.base_models import base_model_clean
from apps.training.services import finetune_create_from_dataset, finetune_options
from apps.training.model_choices import default_model_choice

# Each step's share of the pipeline's progress bar: training dominates the time.
logger = logging.getLogger(__name__)

SPANS = {Job.Kind.EXTRACT: [0.0, 0.05], Job.Kind.GENERATE: [0.05, 0.1], Job.Kind.TRAIN: [0.1, 0.85],
         Job.Kind.EVALUATE: [0.85, 1.0]}


def pipeline_start(*, owner, files, name: str, base_model: str | None = None, method: str = FineTune.Method.LORA,
                   options: dict | None = None, dataset: Dataset | None = None) -> Job:
    """Create a dataset from `files` (or add them to `dataset`) and run extraction, generation, training and the
    evaluation, on `base_model` or else the best real model installed (apps.training.model_choices.default_model_choice).

    Side effects: stores the files, creates the dataset, the pipeline job and its extraction jobs.
    Raises ValidationError (nothing is kept) when a file is rejected."""
    if not files:
        raise ValidationError("Choose at least one document.")
    finetune_options(options or {})  # bad training options (a too-long system prompt) fail now, not after extraction
    base_model = base_model_clean(name=base_model or default_model_choice())
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


def pipeline_advance(job: Job) -> None:
    """What follows a pipeline's step (the `after` of the step kinds' job types): start the next step once this one
    succeeded, or end the pipeline after its last. A step that did not succeed ends the pipeline by itself
    (apps.core.services._parent_follow). A failure to start the next step ends the pipeline with a readable error
    instead of leaving it running with nothing to run."""
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
    if job.status != Job.Status.SUCCEEDED or parent.cancel_requested_at:
        return  # the pipeline has ended with this step (apps.core.services._parent_follow)
    dataset = Dataset.objects.get(pk=parent.config["dataset"])
    # In a transaction, so the next step's task is sent (on commit) only after its span is recorded; and one step's
    # end at a time per pipeline: two extractions ending together would otherwise both see every extraction done and
    # both start generation (and so training). The row lock on the pipeline serialises them on PostgreSQL; on SQLite
    # every transaction takes the database's write lock as it begins (transaction_mode IMMEDIATE), which does the
    # same. Under the lock, the next step's job is the record that it started: the second caller finds it and stops.
    with transaction.atomic():
        Job.objects.select_for_update().filter(pk=parent.pk).values_list("pk", flat=True).get()
        next_kind = {Job.Kind.EXTRACT: Job.Kind.GENERATE, Job.Kind.GENERATE: Job.Kind.TRAIN,
                     Job.Kind.TRAIN: Job.Kind.EVALUATE}.get(job.kind)
        if next_kind and parent.children.filter(kind=next_kind).exists():
            return  # another caller has started the next step
        if job.kind == Job.Kind.EXTRACT:
            if parent.children.filter(kind=Job.Kind.EXTRACT).exclude(status=Job.Status.SUCCEEDED).exists():
                return  # other documents are still being extracted
            _mark_span(qa_generate_start(dataset=dataset, parent=parent), Job.Kind.GENERATE)
            return
        if job.kind == Job.Kind.GENERATE:
            if not dataset.pairs.included().exists():
                names = ", ".join(dataset.documents.values_list("filename", flat=True)[:5])
                raise ValidationError(f"No question could be made from {names}: the text holds no sentence that "
                                      f"states a fact (a name, a number, a date or a definition). Add a document with "
                                      f"more text, or write pairs by hand on the dataset page.")
            # Settings the person left out follow the model, the pairs just made and the worker's time budget.
            base_model, method = parent.config["base_model"], parent.config["method"]
            plan = training_plan(base_model=base_model, method=method, dataset=dataset,
                                 chosen=parent.config["options"],
                                 document_text=(parent.config["options"] or {}).get("document_text"))
            for line in plan["warnings"] + plan["reasons"]:  # shown in the pipeline's log before training starts
                job_event_add(job=parent, type=JobEvent.Type.LOG, data={"line": line})
            options = plan_options(plan, parent.config["options"])
            finetune = finetune_create_from_dataset(owner=parent.owner, dataset=dataset, note="Frozen by the pipeline",
                                                    base_model=base_model, method=method, options=options, parent=parent)
            _mark_span(finetune.job, Job.Kind.TRAIN)
            return
        if job.kind == Job.Kind.TRAIN:
            # The evaluation (recall, unseen facts, control) is the last step; a version too small to hold anything
            # out has none, and the pipeline ends with its training.
            evaluation = heldout_evaluation_after_training(train_job=job, parent=parent)
            if evaluation is not None:
                _mark_span(evaluation.job, Job.Kind.EVALUATE)
                return
    if job.kind in (Job.Kind.TRAIN, Job.Kind.EVALUATE):
        finetune = FineTune.objects.get(pk=job.config["finetune"]) if job.kind == Job.Kind.EVALUATE else FineTune.objects.get(job=job)
        job_finish(job=parent, status=Job.Status.SUCCEEDED, result=pipeline_result(dataset=dataset, finetune=finetune))


def pipeline_result(*, dataset: Dataset, finetune: FineTune) -> dict:
    """What a finished pipeline reports: the data, the training, and the evaluation's figures as token F1 from 0 to 1,
    before (the base model) and after (the tuned one); None where not measured."""
    metrics = finetune.metrics or {}
    evaluation = metrics.get("evaluation") or {}
    result = {k: metrics.get(k) for k in ("train_steps", "loss_first", "loss_last", "em_before", "em_after",
                                            "tokens_per_s", "heldout_examples", "passages")}
    result.update(dataset=str(dataset.code), documents=dataset.documents.count(),
                  qa_pairs=dataset.pairs.included().count(), finetune=str(finetune.code), base_model=finetune.base_model)
    for group in ("recall", "unseen", "control"):
        figures = evaluation.get(group) or {}
        result[f"{group}_before"] = (figures.get("token_f1") or {}).get("base")
        result[f"{group}_after"] = (figures.get("token_f1") or {}).get("tuned")
    return result


def _mark_span(job: Job, kind: str) -> None:
    """Give a step its share of the pipeline's bar before its task starts (the task reads it on claim)."""
    job.config = {**job.config, "pipeline_span": SPANS[kind]}
    Job.objects.filter(pk=job.pk).update(config=job.config)
