import uuid

from django.conf import settings
from django.db import models


class OwnedModel(models.Model):
    """Base of everything a user owns: a public UUID `code` for URLs and an owner."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True


# Job.snapshot's `waiting` when the caller has not computed it (None is a value: "not waiting").
_LOOK_UP = object()


class Job(OwnedModel):
    """One piece of long work (extraction, generation, training, ...). The row is the source of truth."""

    class Kind(models.TextChoices):
        EXTRACT = "extract", "Extract text"
        GENERATE = "generate", "Generate QA pairs"
        CURATE = "curate", "Curate QA pairs"
        IMPORT = "import", "Import examples"
        TRAIN = "train", "Fine-tune"
        PIPELINE = "pipeline", "Document to model"
        EXPORT = "export", "Export model"
        EVALUATE = "evaluate", "Evaluate on held-out data"
        BENCHMARK = "benchmark", "Benchmark"
        PUSH = "push", "Push to the Hugging Face Hub"
        GRPO = "grpo", "Reinforcement learning (GRPO)"
        OPTIMIZE_PROMPT = "optimize_prompt", "Optimize a system prompt"
        SLEEP = "sleep", "Diagnostic sleep"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
    # Kinds whose task continues from its last checkpoint when run again (the reaper re-queues them).
    RESUMABLE = frozenset({Kind.TRAIN, Kind.GRPO})

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    queue = models.CharField(max_length=20, default="default")
    title = models.CharField(max_length=200, blank=True)
    phase = models.CharField(max_length=40, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    message = models.CharField(max_length=300, blank=True)
    config = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, help_text="Technical detail for administrators; never shown to users.")
    error_message = models.CharField(max_length=500, blank=True, help_text="Readable explanation shown to the user.")
    celery_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    # When the message carrying celery_task_id was handed to the broker: the reaper sends a queued job again when its
    # message is older than GARAGE_QUEUED_RESEND_AFTER and the broker no longer holds it. Empty when a send failed.
    sent_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.code} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    def snapshot(self, *, waiting=_LOOK_UP) -> dict:
        """The state a page or websocket client needs to draw this job. What it says is derived from the status, so
        nothing goes stale: the phase and the running message end with the job (an ended job keeps only a successful
        run's last message), and `waiting` (apps.core.selectors.job_waiting, looked up unless given) says where a
        queued job stands in line and why."""
        if waiting is _LOOK_UP:
            from apps.core.selectors import job_waiting

            waiting = job_waiting(job=self)
        stopping = self.cancel_requested_at is not None and not self.is_final
        if self.is_final:
            phase, message = "", self.message if self.status == self.Status.SUCCEEDED else ""
        elif stopping:
            phase, message = "", "Stopping at the next step."
        else:
            phase, message = self.phase, self.message
        return {
            "code": str(self.code),
            "kind": self.kind,
            "title": self.title or self.get_kind_display(),
            "status": self.status,
            "status_display": "Cancelling" if stopping else self.get_status_display(),
            "phase": phase,
            "progress": self.progress,
            "message": message,
            "waiting": waiting,
            "error_message": self.error_message,
            "result": self.result,
            "cancel_requested": self.cancel_requested_at is not None,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class JobEvent(models.Model):
    """Append-only history of a job: status changes, progress, log lines and metrics, in id order."""

    class Type(models.TextChoices):
        STATUS = "status", "Status"
        PROGRESS = "progress", "Progress"
        LOG = "log", "Log line"
        METRIC = "metric", "Metric"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=10, choices=Type.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.type} #{self.pk} of job {self.job_id}"

    def as_message(self) -> dict:
        return {"id": self.pk, "type": self.type, "at": self.created_at.isoformat(), "data": self.data}
