"""Writes of the datasets app: editing pairs by hand, and checking and queueing their curation and the import of existing
datasets (apps.datasets.jobs runs those jobs)."""
from __future__ import annotations

from dataclasses import fields
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.options import options_clean
from apps.core.services import job_create
from apps.datasets.models import Dataset, Document, QAPair
from apps.datasets.services.documents import clean_filename
from workers.common.curation import CurateConfig
from workers.common.errors import ReadableError
from workers.common.options import Bool, Field, Float, Int, Text
from workers.common.records import RECORD_SUFFIXES, Example, hub_dataset_id_check, hub_offline

MAX_QUESTION_CHARS = 20_000
MAX_ANSWER_CHARS = 100_000
MAX_SYSTEM_CHARS = 20_000


# ---------------------------------------------------------------------------------------------- pairs by hand


def _clean_pair_fields(*, question, answer, system) -> dict:
    question, answer, system = (question or "").strip(), (answer or "").strip(), (system or "").strip()
    if not question:
        raise ValidationError("Write a question.")
    if not answer:
        raise ValidationError("Write an answer.")
    for text, limit, what in ((question, MAX_QUESTION_CHARS, "question"), (answer, MAX_ANSWER_CHARS, "answer"),
                              (system, MAX_SYSTEM_CHARS, "system prompt")):
        if len(text) > limit:
            raise ValidationError(f"The {what} is longer than {limit:,} characters.")
    return {"question": question, "answer": answer, "system": system}


def qa_pair_create(*, dataset: Dataset, question: str, answer: str, system: str = "") -> QAPair:
    """Add a hand-written pair. Side effects: creates a QAPair. Raises ValidationError for empty or huge texts."""
    return QAPair.objects.create(dataset=dataset, source=QAPair.Source.MANUAL,
                                 **_clean_pair_fields(question=question, answer=answer, system=system))


def qa_pair_update(*, pair: QAPair, question: str | None = None, answer: str | None = None,
                   system: str | None = None) -> QAPair:
    """Change a pair's texts (None leaves a field as it is). Frozen versions keep their own copies, so they do not change.

    Side effects: saves the QAPair, marked `edited` (regeneration keeps it); a judge's rating no longer applies to
    the new text and is cleared."""
    cleaned = _clean_pair_fields(question=pair.question if question is None else question,
                                 answer=pair.answer if answer is None else answer,
                                 system=pair.system if system is None else system)
    changed = [name for name, value in cleaned.items() if getattr(pair, name) != value]
    if changed:
        for name in changed:
            setattr(pair, name, cleaned[name])
        pair.rating = None
        pair.edited = True  # so that generating pairs again does not throw the person's work away
        pair.save(update_fields=changed + ["rating", "edited", "updated_at"])
    return pair


def qa_pairs_restore(*, dataset: Dataset) -> int:
    """Put every pair that curation set aside back into the dataset. Side effects: updates QAPairs; returns how many."""
    return dataset.pairs.set_aside().update(excluded="", excluded_note="")


def qa_pair_restore(*, pair: QAPair) -> QAPair:
    """Put one set-aside pair back into the dataset. Side effects: updates the QAPair."""
    if pair.excluded:
        pair.excluded, pair.excluded_note = "", ""
        pair.save(update_fields=["excluded", "excluded_note", "updated_at"])
    return pair


def qa_pairs_add_examples(*, dataset: Dataset, examples: list[Example], source: str = QAPair.Source.IMPORTED,
                          document: Document | None = None) -> int:
    """Add examples (workers.common.records.Example) as pairs of the dataset, e.g. those an extractor recognised in a
    JSON or CSV document. Side effects: creates QAPairs. Examples too long to be useful are skipped; returns how many were added."""
    def clean(text: str) -> str:
        return text.replace("\x00", "").strip()  # PostgreSQL cannot store NUL in text; it carries no meaning

    pairs = [QAPair(dataset=dataset, document=document, source=source, system=clean(e.system),
                    question=clean(e.question), answer=clean(e.answer))
             for e in examples
             if clean(e.question) and clean(e.answer) and len(e.question) <= MAX_QUESTION_CHARS
             and len(e.answer) <= MAX_ANSWER_CHARS and len(e.system) <= MAX_SYSTEM_CHARS]
    QAPair.objects.bulk_create(pairs, batch_size=1000)
    return len(pairs)


# ---------------------------------------------------------------------------------------------- curation

# Options that are not the engine's own: which chat provider judges, and whether personal data is scrubbed first.
_SERVICE_OPTIONS = {"judge_provider": "", "scrub_pii": True}
_CURATE_FIELDS = {f.name: f.default for f in fields(CurateConfig)} | _SERVICE_OPTIONS


def _option(default) -> Field:
    if isinstance(default, bool):
        return Bool(default)
    if isinstance(default, int):
        return Int(default)
    if isinstance(default, float):
        return Float(default)
    return Text(default, strip=False)


# The options as one schema (workers.common.options), typed as their defaults are; CurateConfig.validate checks their
# ranges with its own messages, and too long a rubric (never cut short).
CURATE_OPTIONS = {name: _option(default) for name, default in _CURATE_FIELDS.items()}


def curate_options(raw: dict | None) -> dict:
    """Validated curation options (the keys of workers.common.curation.CurateConfig, plus `judge_provider`: "default" or the
    code of a saved chat provider, and `scrub_pii`), every one of them, defaults filled in. Raises ValidationError with
    a readable message for impossible settings and for a key that is not one of them."""
    options = options_clean(CURATE_OPTIONS, raw)
    # Only a hint in the judge's prompt: a long one is cut, as it always was, rather than refused.
    options["task_description"] = options["task_description"][:1000]
    config = _engine_config(options)
    try:
        config.validate()
    except ReadableError as exc:
        raise ValidationError(str(exc))
    return options


def _engine_config(options: dict) -> CurateConfig:
    return CurateConfig(**{k: v for k, v in options.items() if k not in _SERVICE_OPTIONS})


def dataset_curate_start(*, dataset: Dataset, options: dict | None = None, parent: Job | None = None) -> Job:
    """Queue a job that curates the dataset's pairs with these options (see curate_options).

    Side effects: creates a curate Job. Raises ValidationError for bad options or a dataset without pairs."""
    options = curate_options(options)
    if not dataset.pairs.included().exists():
        raise ValidationError("This dataset has no question-answer pairs to curate yet.")
    if options.get("judge"):
        from apps.providers.services import provider_choice_validate

        # Raises ValidationError when the site has no default endpoint, Http404 for a provider not the owner's.
        options["judge_provider"] = provider_choice_validate(owner=dataset.owner, provider=options.get("judge_provider", ""))
    return job_create(owner=dataset.owner, kind=Job.Kind.CURATE, title=f"Curate pairs of {dataset.name}",
                      config={"dataset": dataset.pk, "options": options}, parent=parent)


# ---------------------------------------------------------------------------------------------- import


def _mapping(raw) -> dict | None:
    """A column mapping from a dict whose values are a column or a comma-separated list of columns."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise ValidationError("The column mapping must name the question, answer and (optional) system columns.")
    mapping = {}
    for role in ("question", "answer", "system"):
        value = raw.get(role)
        if isinstance(value, str):
            columns = [c.strip() for c in value.split(",") if c.strip()]
        elif isinstance(value, list):
            columns = [str(c).strip() for c in value if str(c).strip()]
        else:
            columns = []
        if columns:
            mapping[role] = columns
    if any("\x00" in column for columns in mapping.values() for column in columns):
        raise ValidationError("A column name in the mapping holds a NUL character; no column is named so.")
    unknown = set(raw) - {"question", "answer", "system"}
    if unknown:
        raise ValidationError(f"The mapping may name only question, answer and system, not {', '.join(sorted(map(str, unknown)))}.")
    if not mapping:
        return None
    if "question" not in mapping or "answer" not in mapping:
        raise ValidationError("Say which columns hold the question and the answer.")
    return mapping


_FILE_FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


def dataset_import_file_start(*, dataset: Dataset, uploaded_file, mapping: dict | None = None, start: bool = True) -> Job:
    """Store a JSON, JSONL, CSV/TSV or Parquet file and queue a job that imports its training examples.

    The file is parsed by the worker, never in the web request: a few kilobytes of Parquet or JSON can unpack to
    gigabytes. Side effects: stores the file as a pending Document of the dataset (every imported pair links back
    to it) and creates an import Job (queued unless start=False). Raises ValidationError with a readable message
    for an empty, oversized or unsupported file or a bad mapping; what is inside the file is the job's to judge."""
    mapping = _mapping(mapping)
    filename = clean_filename(getattr(uploaded_file, "name", ""))
    size = uploaded_file.size
    if size == 0:
        raise ValidationError(f"'{filename}' is empty.")
    if size > settings.GARAGE_MAX_UPLOAD_BYTES:
        raise ValidationError(f"'{filename}' is larger than the upload limit of {settings.GARAGE_MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    suffix = PurePath(filename).suffix.lower()
    if suffix not in RECORD_SUFFIXES:
        raise ValidationError(f"'{filename}': import takes {', '.join(RECORD_SUFFIXES)} files. "
                              "Upload other documents to generate pairs from their text.")
    uploaded_file.seek(0)
    with transaction.atomic():
        document = Document.objects.create(owner=dataset.owner, dataset=dataset, file=uploaded_file, filename=filename,
                                           size=size, format=_FILE_FORMATS[suffix])
        job = job_create(owner=dataset.owner, kind=Job.Kind.IMPORT, title=f"Import {filename} into {dataset.name}",
                         config={"dataset": dataset.pk, "document": document.pk, "filename": filename, "mapping": mapping},
                         start=start)
        document.job = job
        document.save(update_fields=["job"])
    return job


def dataset_import_hub_start(*, dataset: Dataset, dataset_id: str, split: str = "train", config: str = "",
                             mapping: dict | None = None, limit: int | None = None, start: bool = True) -> Job:
    """Queue a job importing examples from a Hugging Face dataset. Fails at once, readably, for a malformed id, an
    id that is also a local folder (the worker checks again where it loads), or when the server is set to work
    offline. Side effects: creates an import Job (queued unless start=False)."""
    split, config = (split or "train").strip(), (config or "").strip()
    try:
        dataset_id = hub_dataset_id_check(dataset_id)
    except ReadableError as exc:
        raise ValidationError(str(exc))
    if hub_offline():
        raise ValidationError("This server works offline (HF_HUB_OFFLINE is set), so it cannot fetch datasets from the "
                              "Hugging Face Hub. Download the data elsewhere and import the file instead.")
    most = settings.GARAGE_IMPORT_MAX_ROWS
    try:
        limit = most if limit in (None, "") else int(limit)
    except (TypeError, ValueError):
        raise ValidationError("The number of rows must be a whole number.")
    if not 1 <= limit <= most:
        raise ValidationError(f"Import between 1 and {most:,} rows.")
    return job_create(owner=dataset.owner, kind=Job.Kind.IMPORT, title=f"Import {dataset_id} into {dataset.name}",
                      config={"dataset": dataset.pk, "hub_id": dataset_id, "split": split, "config": config,
                              "mapping": _mapping(mapping), "limit": limit}, start=start)
