"""The automatic push: when a model is trained and evaluated, its owner's preferences may queue a push to the Hub."""
import logging

from django.dispatch import receiver

from apps.core.models import Job
from apps.core.signals import job_finished

logger = logging.getLogger(__name__)


def _train_job_to_push(job: Job) -> Job | None:
    """The training job whose model may be pushed now, or None. The push waits for the automatic held-out evaluation
    when the training held examples out, so that the publishing gate sees how the model compares with its base; an
    evaluation that failed lets the push go ahead as "not evaluated" (the gate never blocks those). Without held-out
    examples the push follows the training at once."""
    from apps.evaluation.heldout import heldout_evaluation_expected
    from apps.training.models import FineTune

    if job.kind == Job.Kind.TRAIN and job.status == Job.Status.SUCCEEDED:
        finetune = FineTune.objects.filter(job=job).first()
        return None if finetune is None or heldout_evaluation_expected(finetune=finetune) else job
    if (job.kind == Job.Kind.EVALUATE and job.config.get("automatic")
            and job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED)):
        finetune = FineTune.objects.filter(pk=job.config.get("finetune")).select_related("job").first()
        if finetune is not None and finetune.job is not None and finetune.job.status == Job.Status.SUCCEEDED:
            return finetune.job
    return None


@receiver(job_finished)
def hub_push_after_training(sender, job: Job, **kwargs) -> None:
    """Queue the automatic push of a model whose training (and automatic evaluation) ended. Never raises: the job has
    already ended, and a failure here must not look like a failure of the training or evaluation."""
    if job.kind not in (Job.Kind.TRAIN, Job.Kind.EVALUATE):
        return
    from apps.hub.services import hub_auto_push

    try:
        train_job = _train_job_to_push(job)
        if train_job is not None:
            hub_auto_push(train_job=train_job)
    except Exception:
        logger.exception("The automatic push after job %s could not be queued", job.code)
