"""The subjects of reinforcement-learning jobs (apps.core.subjects): a GRPO run and a reward preview."""
from django.urls import reverse

from apps.core.subjects import JobSubject, job_subject_kind, job_subject_page
from apps.rl.models import GrpoRun, RewardPreview


@job_subject_kind("grpo_run", priority=30)
def grpo_run_subject(*, job, pk) -> JobSubject | None:
    run = GrpoRun.objects.filter(owner_id=job.owner_id, pk=pk).first()
    return job_subject_page("the GRPO run", run.name, "rl:detail", run.code) if run is not None else None


@job_subject_kind("reward_preview", priority=40)
def reward_preview_subject(*, job, pk) -> JobSubject | None:
    preview = RewardPreview.objects.filter(owner_id=job.owner_id, pk=pk).first()
    if preview is None:
        return None
    # A preview has no name of its own.
    return JobSubject(label="the reward preview", name="reward preview", url=reverse("rl:preview", args=[preview.code]))
