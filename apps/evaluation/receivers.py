"""The automatic held-out evaluation: when a training job succeeds, its model is evaluated on the examples its
dataset version held out."""
import logging

from django.dispatch import receiver

from apps.core.models import Job
from apps.core.signals import job_finished

logger = logging.getLogger(__name__)


@receiver(job_finished)
def heldout_evaluation_after_training(sender, job: Job, **kwargs) -> None:
    """Queue the held-out evaluation of a model whose training succeeded. Never raises: the training job has already
    ended, and a failure here must not look like a failure of the training."""
    if job.kind != Job.Kind.TRAIN or job.status != Job.Status.SUCCEEDED:
        return
    if job.parent_id is not None and job.parent.kind == Job.Kind.PIPELINE:
        return  # a pipeline runs the evaluation as its own last step (apps.training.pipeline)
    from apps.evaluation.heldout import heldout_evaluation_after_training as start

    try:
        start(train_job=job)
    except Exception:
        logger.exception("The held-out evaluation after training job %s could not be queued", job.code)
