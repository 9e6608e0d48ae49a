from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.core.models import Job, JobEvent


def job_list_for_user(*, user) -> QuerySet[Job]:
    return Job.objects.filter(owner=user, parent__isnull=True)


def job_get_for_user(*, user, code) -> Job:
    """The user's job with this code; 404 for anyone else, so strangers cannot even learn it exists."""
    try:
        return Job.objects.get(owner=user, code=code)
    except (Job.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such job.")


def job_events(*, job, after_id: int = 0, limit: int = 2000) -> list[JobEvent]:
    return list(JobEvent.objects.filter(job=job, id__gt=after_id).order_by("id")[:limit])


# ---------------------------------------------------------------------------------------------- the line of waiting jobs

# Beyond this many jobs ahead, a job's panel reads "More than 50 jobs ahead of yours": its text then changes only near
# the front of the line, and a move of a long line is sent only to the jobs there (apps.core.realtime.queue_publish).
AHEAD_SHOWN = 50


def queue_line(*, queue: str) -> list[tuple[Job, int | None, str]]:
    """The queued jobs of `queue` in line order, each with its position (1 is next; None once handed to a GPU worker)
    and why it waits. GPU jobs follow the fair dispatch order (apps.core.scheduling), others the order the broker hands
    out their messages: the order they were sent in, so a retried job goes to the back."""
    from apps.core.scheduling import GPU_QUEUE, gpu_active_per_user, gpu_waiting_order

    if queue != GPU_QUEUE:
        line = (Job.objects.filter(status=Job.Status.QUEUED, queue=queue)
                .order_by(Coalesce("sent_at", "created_at"), "id"))
        return [(job, position, "waiting for a free worker") for position, job in enumerate(line, start=1)]
    handed = (Job.objects.filter(queue=GPU_QUEUE, status=Job.Status.QUEUED).exclude(celery_task_id="")
              .order_by("sent_at", "id"))
    line = [(job, None, "handed to a GPU worker; it starts when the worker takes it") for job in handed]
    active = gpu_active_per_user()
    for position, job in enumerate(gpu_waiting_order(), start=1):
        own = active[job.owner_id]
        if own >= settings.GARAGE_GPU_JOBS_PER_USER:
            reason = "your other GPU job is running" if own == 1 else f"your {own} other GPU jobs are running"
        else:
            reason = "waiting for a free GPU"
        line.append((job, position, reason))
    return line


def job_queue_position(*, job) -> int | None:
    """The job's place in line (1 is next); None when it is not waiting in one."""
    if job.status != Job.Status.QUEUED:
        return None
    return next((position for other, position, _ in queue_line(queue=job.queue) if other.pk == job.pk), None)


def job_waiting(*, job) -> dict | None:
    """Where a queued job stands and why, for its panel (see waiting_state); None for a job that is not queued."""
    if job.status != Job.Status.QUEUED:
        return None
    return next((waiting_state(position=position, reason=reason)
                 for other, position, reason in queue_line(queue=job.queue) if other.pk == job.pk), None)


def waiting_state(*, position: int | None, reason: str) -> dict:
    """A waiting job's place and reason as its panel shows them: {"ahead": 2, "text": "2 jobs ahead of yours; waiting
    for a free GPU."}. `ahead` is None once the job is handed to a worker, or when more than AHEAD_SHOWN are ahead."""
    if position is None:
        return {"ahead": None, "text": reason[0].upper() + reason[1:] + "."}
    ahead = position - 1
    if ahead == 0:
        place = "Next in line"
    elif ahead > AHEAD_SHOWN:
        place, ahead = f"More than {AHEAD_SHOWN} jobs ahead of yours", None
    else:
        place = f"{ahead} job{'s' if ahead != 1 else ''} ahead of yours"
    return {"ahead": ahead, "text": f"{place}; {reason}."}


# ---------------------------------------------------------------------------------------------- what a job belongs to


@dataclass(frozen=True)
class JobSubject:
    """The thing a job works on and its page: `label` reads "the model “X”", `name` is X alone."""

    label: str
    name: str
    url: str


def job_subject(*, job: Job) -> JobSubject | None:
    """What the job belongs to (a model, dataset, document or run) and its page, from the ids the job's config holds;
    None when it holds none, or none of the owner's things any more."""
    from django.urls import reverse

    from apps.datasets.models import Dataset, Document
    from apps.evaluation.models import BenchmarkRun, HeldoutEvaluation
    from apps.prompts.models import OptimizedPrompt
    from apps.rl.models import GrpoRun, RewardPreview
    from apps.training.models import FineTune

    def find(model, key, *related):
        pk = job.config.get(key)
        found = model.objects.filter(owner_id=job.owner_id, pk=pk).select_related(*related)
        return found.first() if isinstance(pk, int) else None

    def subject(noun, name, url_name, code):
        return JobSubject(label=f"{noun} “{name}”", name=str(name), url=reverse(url_name, args=[code]))

    # Most specific first: an evaluation also names its model, an import its dataset and its document.
    if evaluation := find(HeldoutEvaluation, "heldout_evaluation", "finetune"):
        return subject("the held-out evaluation of", evaluation.finetune.name, "evaluation:heldout", evaluation.code)
    if run := find(BenchmarkRun, "benchmark_run"):
        return subject("the benchmark", run, "evaluation:detail", run.code)
    if run := find(GrpoRun, "grpo_run"):
        return subject("the GRPO run", run.name, "rl:detail", run.code)
    if preview := find(RewardPreview, "reward_preview"):
        return JobSubject(label="the reward preview", name="reward preview",
                          url=reverse("rl:preview", args=[preview.code]))
    if run := find(OptimizedPrompt, "optimized_prompt"):
        return subject("the prompt optimization", run.name, "prompts:detail", run.code)
    if finetune := find(FineTune, "finetune"):
        return subject("the model", finetune.name, "training:detail", finetune.code)
    if dataset := find(Dataset, "dataset"):
        return subject("the dataset", dataset.name, "datasets:detail", dataset.code)
    if document := find(Document, "document"):
        return subject("the document", document.filename, "datasets:document", document.code)
    return None


# The Cancel button's question names the work: "Cancel <what> “<subject's name>”? <what is lost>". Kinds left out
# (a pipeline, a reward preview) are named by their job's title.
_CANCEL_WHAT = {
    Job.Kind.EXTRACT: "the text extraction of", Job.Kind.GENERATE: "the pair generation for",
    Job.Kind.CURATE: "the curation of", Job.Kind.IMPORT: "the import into", Job.Kind.TRAIN: "the training of",
    Job.Kind.EXPORT: "the export of", Job.Kind.EVALUATE: "the held-out evaluation of",
    Job.Kind.BENCHMARK: "the benchmark", Job.Kind.PUSH: "the upload of",
    Job.Kind.OPTIMIZE_PROMPT: "the prompt optimization",
}


def job_cancel_question(*, job: Job, subject: JobSubject | None) -> str:
    """What the Cancel button asks: the job, and what stopping it loses. Trainings keep their saved checkpoints (a
    retry continues from the newest), so only the steps since the last one are lost."""
    if "grpo_run" in job.config and subject is not None:
        what = f"the GRPO training “{subject.name}”"
    elif job.kind in _CANCEL_WHAT and subject is not None:
        what = f"{_CANCEL_WHAT[job.kind]} “{subject.name}”"
    else:
        what = f"“{job.title or job.get_kind_display()}”"
    if job.kind == Job.Kind.TRAIN or "grpo_run" in job.config:
        lost = "The steps since its last saved checkpoint are lost."
    elif job.kind == Job.Kind.PIPELINE:
        lost = "Its current step stops and the steps after it do not run."
    else:
        lost = "Its progress so far is lost."
    return f"Cancel {what}? {lost}"
