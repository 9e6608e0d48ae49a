"""The subjects of evaluation jobs (apps.core.subjects): a held-out evaluation, named by its model, and a benchmark."""
from apps.core.subjects import JobSubject, job_subject_kind, job_subject_page
from apps.evaluation.models import BenchmarkRun, HeldoutEvaluation


# Before the model (60): an evaluation's config also names the model it evaluates.
@job_subject_kind("heldout_evaluation", priority=10)
def heldout_evaluation_subject(*, job, pk) -> JobSubject | None:
    evaluation = HeldoutEvaluation.objects.filter(owner_id=job.owner_id, pk=pk).select_related("finetune").first()
    if evaluation is None:
        return None
    return job_subject_page("the held-out evaluation of", evaluation.finetune.name, "evaluation:heldout",
                            evaluation.code)


@job_subject_kind("benchmark_run", priority=20)
def benchmark_run_subject(*, job, pk) -> JobSubject | None:
    run = BenchmarkRun.objects.filter(owner_id=job.owner_id, pk=pk).first()
    return job_subject_page("the benchmark", run, "evaluation:detail", run.code) if run is not None else None
