import uuid
from pathlib import PurePath

from django.db import models
from django.db.models import Exists, OuterRef, Q

from apps.core.models import Job, OwnedModel
from workers.common.formats import TEXT_FORMATS


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


class DocumentQuerySet(models.QuerySet):
    def ready(self):
        """The documents whose text or examples are in (Document.status is READY): their extraction or import job
        succeeded or, with no job, they hold what one leaves (see Document.status)."""
        holds = (Q(format=Document.HUB_FORMAT) | ~Q(text="")
                 | Exists(Chunk.objects.filter(document=OuterRef("pk")))
                 | Exists(QAPair.objects.filter(document=OuterRef("pk"))))
        return self.filter(Q(job__status=Job.Status.SUCCEEDED) | (Q(job__isnull=True) & holds))


class Document(OwnedModel):
    class Status(models.TextChoices):
        """What a document shows, derived by `Document.status`; never stored."""
        PENDING = "pending", "Waiting for extraction"
        READY = "ready", "Extracted"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    HUB_FORMAT = "hub"  # the document a Hub import writes to stand for the Hub dataset
    JOB_GONE = "Its extraction job was deleted before it finished. Upload the file again."

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="documents")
    file = models.FileField(upload_to=document_upload_to, max_length=300)
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    format = models.CharField(max_length=20, blank=True)
    text = models.TextField(blank=True)
    pages = models.PositiveIntegerField(default=0)
    chars = models.PositiveIntegerField(default=0)
    page_offsets = models.JSONField(default=list, blank=True,
                                    help_text="Character offset in `text` where each page or slide starts.")
    extract_seconds = models.FloatField(null=True, blank=True)
    encoding = models.CharField(max_length=40, blank=True,
                                help_text="The text encoding a text file was read with (Python's codec name).")
    encoding_choice = models.CharField(max_length=40, blank=True,
                                      help_text="The encoding its owner chose for the next extraction; empty: told "
                                                "by the file.")
    warnings = models.JSONField(default=list, blank=True,
                                help_text="What the extraction may have read wrongly or left out, for its owner.")
    ocr_spans = models.JSONField(default=list, blank=True,
                                 help_text="[start, end) character ranges of `text` read from images by OCR.")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return self.filename

    # The status is read from the document's extraction (or file import) job each time, never copied onto the row:
    # a copy stayed "Waiting" for ever when the job crashed, was reaped or was cancelled. List with
    # select_related("job").
    @property
    def status(self) -> str:
        job = self.job
        if job is None:
            return self.Status.READY if self._holds_content() else self.Status.FAILED
        return {Job.Status.SUCCEEDED: self.Status.READY, Job.Status.FAILED: self.Status.FAILED,
                Job.Status.CANCELLED: self.Status.CANCELLED}.get(job.status, self.Status.PENDING)

    @property
    def status_display(self) -> str:
        status = self.status
        if status == self.Status.PENDING and self.job.status == Job.Status.RUNNING:
            return "Importing" if self.job.kind == Job.Kind.IMPORT else "Extracting"
        return self.Status(status).label

    @property
    def error_message(self) -> str:
        """Why the document failed, in words for its owner: its job's readable error (never the technical one)."""
        if self.status != self.Status.FAILED:
            return ""
        return self.job.error_message if self.job is not None else self.JOB_GONE

    @property
    def encoding_choosable(self) -> bool:
        """Whether its owner may extract it again in another text encoding: a text file whose extraction ended."""
        return (self.format in TEXT_FORMATS and self.job is not None and self.job.kind == Job.Kind.EXTRACT
                and self.job.is_final)

    def _holds_content(self) -> bool:
        # Without a job, what the document holds decides. The only documents made without one are those a Hub
        # import writes in the transaction that adds their pairs (format "hub"): whole by construction, and still
        # ready once their pairs are deleted by hand. Any other document lost its job (deleted by an administrator;
        # the foreign key is SET_NULL): it is ready when an extraction or import finished on it (it has text,
        # chunks or imported pairs), else nothing will ever fill it, and it failed.
        return (self.format == self.HUB_FORMAT or bool(self.text) or self.chunks.exists()
                or self.pairs.exists())


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    page = models.PositiveIntegerField(default=1, help_text="Page or slide where the chunk starts.")
    page_end = models.PositiveIntegerField(default=1, help_text="Page or slide where the chunk ends.")
    ocr = models.BooleanField(default=False, help_text="Some of the chunk's text was read from images by OCR.")
    token_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["document_id", "index"]
        constraints = [models.UniqueConstraint(fields=["document", "index"], name="unique_chunk_index")]

    def __str__(self):
        return f"{self.document} #{self.index}"


class QAPairQuerySet(models.QuerySet):
    def included(self):
        """The pairs that are part of the dataset: what versions freeze, exports write and pages show."""
        return self.filter(excluded="")

    def set_aside(self):
        """The pairs curation set aside; kept so that a too-eager curation can be undone."""
        return self.exclude(excluded="")


class QAPair(models.Model):
    class Exclusion(models.TextChoices):
        TOO_SHORT = "too_short", "Too short"
        TOO_LONG = "too_long", "Too long"
        EXACT_DUPLICATE = "exact_duplicate", "Duplicate question"
        NEAR_DUPLICATE = "near_duplicate", "Near-duplicate question"
        LOW_RATING = "low_rating", "Rated below the threshold"

    class Source(models.TextChoices):
        EXTRACTIVE = "extractive", "Extractive (offline)"
        ENDPOINT = "endpoint", "Chat endpoint"
        LOCAL_MODEL = "local_model", "Local model"
        IMPORTED = "imported", "Imported"
        MANUAL = "manual", "Written by hand"

    GENERATED = (Source.EXTRACTIVE, Source.ENDPOINT, Source.LOCAL_MODEL)

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pairs")
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="pairs")
    chunk = models.ForeignKey(Chunk, null=True, blank=True, on_delete=models.SET_NULL, related_name="pairs")
    system = models.TextField(blank=True, help_text="Optional system prompt of the example.")
    question = models.TextField()
    answer = models.TextField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.EXTRACTIVE)
    rating = models.FloatField(null=True, blank=True, help_text="Judge's score from 1 to 10, when rated.")
    excluded = models.CharField(max_length=20, choices=Exclusion.choices, blank=True, default="",
                                help_text="Why curation set the pair aside; empty while the pair is part of the dataset.")
    excluded_note = models.CharField(max_length=300, blank=True)
    fact = models.CharField(max_length=64, blank=True, default="",
                            help_text="Key shared by the phrasings of one fact (the same answer asked several ways); "
                                      "empty when the pair stands alone.")
    edited = models.BooleanField(default=False, help_text="Changed by hand after it was made: generating pairs again "
                                                          "keeps it, as it keeps pairs written by hand.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = QAPairQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = "QA pair"
        indexes = [models.Index(fields=["dataset", "excluded", "id"], name="qapair_dataset_excluded")]

    @property
    def source_document(self):
        """Where the pair came from: its document, or the document of its chunk."""
        if self.document_id:
            return self.document
        return self.chunk.document if self.chunk_id else None

    def __str__(self):
        return self.question[:80]


class DatasetVersion(OwnedModel):
    """A frozen copy of a dataset's pairs. Training always names one, so a model's data never changes later."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    note = models.CharField(max_length=300, blank=True)
    example_count = models.PositiveIntegerField(default=0)
    heldout_count = models.PositiveIntegerField(default=0, help_text="Examples set aside for evaluation, never trained on "
                                                                     "(recall phrasings and unseen facts).")
    recall_count = models.PositiveIntegerField(default=0, help_text="Of those, new phrasings of facts that are trained on.")

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["dataset", "number"], name="unique_dataset_version_number")]

    def __str__(self):
        return f"{self.dataset} v{self.number}"


class VersionExample(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "Training"
        # A new phrasing of a fact whose other phrasings are trained on: did the model learn the fact, not the words?
        RECALL = "recall", "Recall (a new phrasing of a trained fact)"
        # A fact none of whose phrasings is trained on: the model can only know it from elsewhere.
        HELDOUT = "heldout", "Unseen fact (evaluation only, never trained on)"

    EVALUATION_SPLITS = (Split.RECALL, Split.HELDOUT)

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="examples")
    position = models.PositiveIntegerField()
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.TRAIN)
    system = models.TextField(blank=True)
    question = models.TextField()
    answer = models.TextField()
    fact = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=20, choices=QAPair.Source.choices)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    chunk = models.ForeignKey(Chunk, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["version_id", "position"]
        constraints = [models.UniqueConstraint(fields=["version", "position"], name="unique_version_position")]

    def __str__(self):
        return self.question[:80]

    @property
    def source_document(self):
        if self.document_id:
            return self.document
        return self.chunk.document if self.chunk_id else None
