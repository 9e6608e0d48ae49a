from collections import Counter
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from apps.core.models import Job, JobEvent
from apps.core.subjects import JobSubject, job_subject_kinds


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


# job_snapshot's `waiting` when the caller has not computed it (None is a value: "not waiting").
_LOOK_UP = object()


def job_snapshot(*, job: Job, waiting=_LOOK_UP) -> dict:
    """The state a page or websocket client needs to draw this job. What it says is derived from the status, so
    nothing goes stale: the phase and the running message end with the job (an ended job keeps only a successful
    run's last message), and `waiting` (job_waiting, looked up unless given) says where a queued job stands in line
    and why."""
    if waiting is _LOOK_UP:
        waiting = job_waiting(job=job)
    stopping = job.cancel_requested_at is not None and not job.is_final
    if job.is_final:
        phase, message = "", job.message if job.status == job.Status.SUCCEEDED else ""
    elif stopping:
        phase, message = "", "Stopping at the next step."
    else:
        phase, message = job.phase, job.message
    return {
        "code": str(job.code),
        "kind": job.kind,
        "title": job.title or job.get_kind_display(),
        "status": job.status,
        "status_display": "Cancelling" if stopping else job.get_status_display(),
        "phase": phase,
        "progress": job.progress,
        "message": message,
        "waiting": waiting,
        "error_message": job.error_message,
        "result": job.result,
        "cancel_requested": job.cancel_requested_at is not None,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


# ---------------------------------------------------------------------------------------------- the line of waiting jobs

# Beyond this many jobs ahead, a job's panel reads "More than 50 jobs ahead of yours": its text then changes only near
# the front of the line, and a move of a long line is sent only to the jobs there (apps.core.realtime.queue_publish).
AHEAD_SHOWN = 50

GPU_QUEUE = "gpu"


def _active(jobs) -> Q:
    """Running, or handed to the broker and about to run."""
    return Q(status=Job.Status.RUNNING) | (Q(status=Job.Status.QUEUED) & ~Q(celery_task_id=""))


def gpu_active_per_user() -> Counter:
    """How many GPU jobs each user has running or handed to the broker."""
    gpu = Job.objects.filter(queue=GPU_QUEUE)
    return Counter(gpu.filter(_active(gpu)).values_list("owner_id", flat=True))


def gpu_waiting_order() -> list[Job]:
    """The GPU jobs not yet dispatched, in the order apps.core.scheduling.gpu_dispatch will dispatch them (ignoring
    free slots): the fair order, read here so that the line (queue_line) and the dispatcher agree.

    Round robin between users: fewest active jobs first, then the user whose last GPU job started longest
    ago (or never), then the oldest job. Each pick counts as active and as just started for the next pick."""
    gpu = Job.objects.filter(queue=GPU_QUEUE)
    running = gpu_active_per_user()
    last_start = dict(gpu.filter(started_at__isnull=False).values("owner_id").annotate(last=Max("started_at"))
                      .values_list("owner_id", "last"))
    never = datetime.min.replace(tzinfo=dt_timezone.utc)
    waiting = list(gpu.filter(status=Job.Status.QUEUED, celery_task_id="").order_by("created_at", "id"))
    order, now = [], timezone.now()
    while waiting:
        job = min(waiting, key=lambda j: (running[j.owner_id], last_start.get(j.owner_id, never), j.created_at, j.id))
        waiting.remove(job)
        order.append(job)
        running[job.owner_id] += 1
        now += timedelta(microseconds=1)  # later picks of the same user sort after everyone else's
        last_start[job.owner_id] = now
    return order


def queue_line(*, queue: str) -> list[tuple[Job, int | None, str]]:
    """The queued jobs of `queue` in line order, each with its position (1 is next; None once handed to a GPU worker)
    and why it waits. GPU jobs follow the fair dispatch order (gpu_waiting_order), others the order the broker hands
    out their messages: the order they were sent in, so a retried job goes to the back."""
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


def job_subject(*, job: Job) -> JobSubject | None:
    """What the job belongs to (a model, dataset, document or run) and its page, from the ids the job's config holds;
    None when it holds none, or none of the owner's things any more. Each app declares the subjects of the config keys
    it owns (apps.core.subjects), the most specific first: an evaluation also names its model, an import its dataset
    and its document."""
    for kind in job_subject_kinds():
        pk = job.config.get(kind.config_key)
        if isinstance(pk, int) and (subject := kind.find(job=job, pk=pk)) is not None:
            return subject
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


def job_retryable(*, job: Job) -> bool:
    """Whether Retry applies: a failed or cancelled job that is not made of steps (a parent follows its steps; its
    failed step is retried instead)."""
    return job.status in (Job.Status.FAILED, Job.Status.CANCELLED) and not job.children.exists()
