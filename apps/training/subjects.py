"""The subject of fine-tuning jobs (apps.core.subjects): the model."""
from apps.core.subjects import JobSubject, job_subject_kind, job_subject_page
from apps.training.models import FineTune


# After the runs and evaluations (10 to 50), whose configs may name their model too.
@job_subject_kind("finetune", priority=60)
def finetune_subject(*, job, pk) -> JobSubject | None:
    finetune = FineTune.objects.filter(owner_id=job.owner_id, pk=pk).first()
    if finetune is None:
        return None
    return job_subject_page("the model", finetune.name, "training:detail", finetune.code)
