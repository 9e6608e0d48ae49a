"""Writes of the datasets app: editing pairs by hand, curating them, importing existing datasets."""
from __future__ import annotations

from dataclasses import fields
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import Dataset, Document, QAPair
from apps.datasets.services.documents import clean_filename
from workers.curate import CurateConfig, curate
from workers.errors import ReadableError
from workers.records import (
    RECORD_SUFFIXES,
    Example,
    ReadLimits,
    examples_from_records,
    hub_dataset_id_check,
    hub_offline,
    load_hub_records,
    load_records,
    parse_training_records,
    record_columns,
)

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
    """Add examples (workers.records.Example) as pairs of the dataset, e.g. those an extractor recognised in a
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


def curate_options(raw: dict | None) -> dict:
    """Validated curation options (the keys of workers.curate.CurateConfig, plus `judge_provider`: "default" or the
    code of a saved chat provider, and `scrub_pii`). Raises ValidationError with a readable message for impossible settings."""
    options = {}
    for name, value in (raw or {}).items():
        if name not in _CURATE_FIELDS or value is None or value == "":
            continue
        if name == "judge_provider":
            options[name] = str(value)
            continue
        default = _CURATE_FIELDS[name]
        try:
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "on", "yes"}
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            else:
                value = str(value)[:1000]
        except (TypeError, ValueError):
            raise ValidationError(f"{name.replace('_', ' ').capitalize()} must be a number.")
        options[name] = value
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


def _judge_transport(*, owner, provider: str, job: Job | None, scrub_pii: bool, batch_size: int):
    """(client, complete_many) for the judge: the owner's saved provider or the site default, every request
    audited, and personal data scrubbed first when asked. The key is decrypted here, in the worker."""
    from apps.providers.models import ExternalCallAudit
    from apps.providers.services import audit_hook, pii_scrubber_for_user, provider_endpoint_resolve

    endpoint = provider_endpoint_resolve(owner=owner, provider=provider or "")
    record = audit_hook(owner=owner, endpoint=endpoint, purpose=ExternalCallAudit.Purpose.JUDGE, job=job)
    scrubber = pii_scrubber_for_user(user=owner) if scrub_pii else None
    client = endpoint.client()

    def complete_many(conversations):
        replacements = [0] * len(conversations)
        if scrubber is not None:
            conversations, replacements = scrubber.scrub_conversations(conversations)
        # About 20 tokens per rated pair, with room for a model that adds a sentence around the JSON.
        return client.complete_many(conversations, on_result=lambda r: record(r, replacements[r.index]),
                                    temperature=0, max_tokens=128 + 20 * batch_size)

    return client, complete_many


def dataset_curate(*, dataset: Dataset, options: dict, reporter, job: Job | None = None) -> dict:
    """Run curation over the dataset's pairs (oldest first, so an earlier pair wins over its duplicate).

    Side effects: sets aside (QAPair.excluded with a note) the pairs curation removes and stores judge ratings;
    with the judge, sends the pairs to the chosen chat endpoint and writes one audit row per request.
    Nothing is deleted: `qa_pairs_restore` brings set-aside pairs back."""
    options = curate_options(options)
    config = _engine_config(options)
    if not config.task_description:
        config.task_description = dataset.description
    pairs = list(dataset.pairs.included().order_by("id"))
    if not pairs:
        raise ReadableError("This dataset has no question-answer pairs to curate.")
    client = complete_many = None
    if config.judge:
        client, complete_many = _judge_transport(owner=dataset.owner, provider=options.get("judge_provider", ""),
                                                 job=job, scrub_pii=options.get("scrub_pii", True),
                                                 batch_size=config.judge_batch_size)
    try:
        result = curate([Example(system=p.system, question=p.question, answer=p.answer) for p in pairs], config,
                        reporter, complete_many=complete_many, facts=[p.fact for p in pairs])
    finally:
        if client is not None:
            client.close()
    removed = {r.index: r for r in result.removed}
    changed = []
    for index, pair in enumerate(pairs):
        removal = removed.get(index)
        rating = result.ratings.get(index)
        if removal is not None:
            pair.excluded, pair.excluded_note = removal.reason, removal.detail[:300]
        if rating is not None:
            pair.rating = rating
        if removal is not None or rating is not None:
            changed.append(pair)
    with transaction.atomic():
        QAPair.objects.bulk_update(changed, ["excluded", "excluded_note", "rating"], batch_size=500)
    counts = result.counts()
    reporter.log(f"Kept {counts['kept']} of {len(pairs)} pairs; set aside " + (", ".join(
        f"{counts[k]} {QAPair.Exclusion(k).label.lower()}" for k in QAPair.Exclusion.values if counts.get(k)) or "none"))
    return {"dataset": str(dataset.code), "pairs": len(pairs), **counts}


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


def _examples(records: list, mapping: dict | None, what: str) -> tuple[list[Example], str, int]:
    """(examples, shape, skipped records) by the mapping, or by recognising a known training-data shape."""
    if mapping:
        try:
            examples = examples_from_records(records, mapping)
        except ReadableError as exc:
            raise ReadableError(f"{what}: {exc}")
        return examples, "mapping", len(records) - len(examples)
    detected = parse_training_records(records)
    if detected is None:
        columns = ", ".join(record_columns(records)[:30]) or "none"
        raise ReadableError(f"{what} does not look like chat, question/answer, prompt/completion, Alpaca or ShareGPT data. "
                            f"Say which columns hold the question and the answer (its columns: {columns}).")
    return detected.examples, detected.shape, detected.skipped


def _import_limits() -> ReadLimits:
    return ReadLimits(max_rows=settings.GARAGE_IMPORT_MAX_ROWS, max_bytes=settings.GARAGE_IMPORT_MAX_MB * 1024 * 1024)


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
                                           size=size, format=_FILE_FORMATS[suffix], status=Document.Status.PENDING)
        job = job_create(owner=dataset.owner, kind=Job.Kind.IMPORT, title=f"Import {filename} into {dataset.name}",
                         config={"dataset": dataset.pk, "document": document.pk, "filename": filename, "mapping": mapping},
                         start=start)
        document.job = job
        document.save(update_fields=["job"])
    return job


def dataset_import_file(*, dataset: Dataset, job_config: dict, reporter) -> dict:
    """Run a file import (the job's body): read the stored file within the import limits (GARAGE_IMPORT_MAX_ROWS,
    GARAGE_IMPORT_MAX_MB; Parquet's are checked from its footer before anything is decoded), recognise the records
    or apply the mapping. Side effects: creates QAPairs with source "imported" and marks the Document ready, or
    marks it failed with the readable error and re-raises the ReadableError."""
    document = Document.objects.get(pk=job_config["document"], dataset=dataset)
    reporter.phase("reading", document.filename)
    try:
        with document.file.open("rb") as stored:
            data = stored.read(settings.GARAGE_MAX_UPLOAD_BYTES + 1)
        file_format, records = load_records(data, document.filename, _import_limits())
        del data
        reporter.progress(0.5, f"{len(records):,} rows read")
        examples, shape, skipped = _examples(records, job_config.get("mapping"), f"'{document.filename}'")
        if not examples:
            raise ReadableError(f"'{document.filename}' has no rows with both a question and an answer.")
    except ReadableError as exc:
        Document.objects.filter(pk=document.pk).update(status=Document.Status.FAILED, error_message=str(exc)[:500])
        raise
    with transaction.atomic():
        imported = qa_pairs_add_examples(dataset=dataset, examples=examples, document=document)
        Document.objects.filter(pk=document.pk).update(status=Document.Status.READY, format=file_format, pages=1,
                                                       error_message="")
    skipped += len(examples) - imported
    reporter.log(f"Imported {imported:,} examples from {document.filename} ({shape}); skipped {skipped:,} rows")
    return {"imported": imported, "skipped": skipped, "shape": shape, "document": str(document.code),
            "filename": document.filename}


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


def dataset_import_hub(*, dataset: Dataset, job_config: dict, reporter) -> dict:
    """Run a Hub import (the job's body). Side effects: creates a Document standing for the Hub dataset and the
    imported QAPairs. Raises ReadableError when the Hub cannot be reached or the data is not recognised."""
    hub_id, split = job_config["hub_id"], job_config.get("split") or "train"
    reporter.phase("downloading", f"{hub_id} ({split})")
    records = load_hub_records(hub_id, split=split, config=job_config.get("config") or None,
                               limit=min(job_config.get("limit") or settings.GARAGE_IMPORT_MAX_ROWS,
                                         settings.GARAGE_IMPORT_MAX_ROWS))
    reporter.progress(0.7, f"{len(records):,} rows read")
    examples, shape, skipped = _examples(records, job_config.get("mapping"), f"'{hub_id}'")
    if not examples:
        raise ReadableError(f"'{hub_id}' has no rows with both a question and an answer.")
    with transaction.atomic():
        document = Document.objects.create(owner=dataset.owner, dataset=dataset, filename=f"{hub_id} ({split})"[:255],
                                           format="hub", status=Document.Status.READY, pages=1)
        imported = qa_pairs_add_examples(dataset=dataset, examples=examples, document=document)
    reporter.log(f"Imported {imported:,} examples from {hub_id} ({shape}); skipped {skipped + len(examples) - imported:,} rows")
    return {"imported": imported, "skipped": skipped + len(examples) - imported, "shape": shape, "document": str(document.code)}


def dataset_import_run(*, dataset: Dataset, job_config: dict, reporter) -> dict:
    """The import job's body: a stored file (config `document`) or a Hub dataset (config `hub_id`)."""
    if job_config.get("document"):
        return dataset_import_file(dataset=dataset, job_config=job_config, reporter=reporter)
    return dataset_import_hub(dataset=dataset, job_config=job_config, reporter=reporter)
