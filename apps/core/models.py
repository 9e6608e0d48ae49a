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
