import uuid
from pathlib import PurePath

from django.db import models

from apps.core.models import Job, OwnedModel


def document_upload_to(instance, filename):
    """Stored under a UUID path; the user's file name is only a field, never part of a path."""
    suffix = PurePath(filename).suffix.lower()[:10]
    return f"documents/{instance.owner_id}/{uuid.uuid4().hex}{suffix}"


class Dataset(OwnedModel):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="What the fine-tuned model should be good at.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class Document(OwnedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for extraction"
        READY = "ready", "Extracted"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="documents")
    file = models.FileField(upload_to=document_upload_to, max_length=300)
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    format = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error_message = models.CharField(max_length=500, blank=True)
    text = models.TextField(blank=True)
    pages = models.PositiveIntegerField(default=0)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return self.filename


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    page = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["document_id", "index"]
        constraints = [models.UniqueConstraint(fields=["document", "index"], name="unique_chunk_index")]

    def __str__(self):
        return f"{self.document} #{self.index}"


class QAPair(models.Model):
    class Source(models.TextChoices):
        EXTRACTIVE = "extractive", "Extractive (offline)"
        MANUAL = "manual", "Written by hand"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pairs")
    chunk = models.ForeignKey(Chunk, null=True, blank=True, on_delete=models.SET_NULL, related_name="pairs")
    question = models.TextField()
    answer = models.TextField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.EXTRACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "QA pair"

    def __str__(self):
        return self.question[:80]
