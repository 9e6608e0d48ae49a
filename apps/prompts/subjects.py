"""The subject of prompt-optimization jobs (apps.core.subjects)."""
from apps.core.subjects import JobSubject, job_subject_kind, job_subject_page
from apps.prompts.models import OptimizedPrompt


@job_subject_kind("optimized_prompt", priority=50)
def optimized_prompt_subject(*, job, pk) -> JobSubject | None:
    run = OptimizedPrompt.objects.filter(owner_id=job.owner_id, pk=pk).first()
    if run is None:
        return None
    return job_subject_page("the prompt optimization", run.name, "prompts:detail", run.code)
