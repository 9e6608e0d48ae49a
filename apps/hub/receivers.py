"""The automatic push: when a training job succeeds, its owner's preferences may queue a push to the Hub."""
import logging

from django.dispatch import receiver

from apps.core.models import Job
from apps.core.signals import job_finished

logger = logging.getLogger(__name__)


@receiver(job_finished)
def hub_push_after_training(sender, job: Job, **kwargs) -> None:
    """Queue the automatic push of a model whose training succeeded. Never raises: the training job has already
    ended, and a failure here must not look like a failure of the training."""
    if job.kind != Job.Kind.TRAIN or job.status != Job.Status.SUCCEEDED:
        return
    from apps.hub.services import hub_auto_push

    try:
        hub_auto_push(train_job=job)
    except Exception:
        logger.exception("The automatic push after training job %s could not be queued", job.code)
