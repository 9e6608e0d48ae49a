"""The worker side of datasets: the bodies of the extract, generate, curate and import jobs, which run the engine
(document extraction and chunking, pair generation, curation, Hub downloads) and write what it made back as rows.
Only `jobs.py` modules import the engine; workers.tasks calls these."""
from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.core.jobtypes import job_type
from apps.training.pipeline import pipeline_advance
from apps.core.models import Job
from apps.datasets.models import Chunk, Dataset, Document, QAPair
from apps.datasets.selectors import qa_pairs_by_hand
from apps.datasets.services.curation import _engine_config, curate_options, qa_pairs_add_examples
from apps.datasets.services.documents import extract_limits, local_path
from apps.datasets.services.generation import ENDPOINT, EXTRACTIVE, LOCAL_MODEL, SOURCE_OF_BACKEND
from workers.common.catalogue import TINY_MODEL_ID
from workers.common.errors import ReadableError
from workers.common.formats import encoding_label
from workers.common.records import (
    Example,
    ReadLimits,
    examples_from_records,
    load_records,
    parse_training_records,
    record_columns,
)
from workers.engine.data.chunking import chunk_text, load_tokenizer_counter
from workers.engine.data.curate import curate
from workers.engine.data.generate import EndpointGenerator, ExtractiveGenerator, LocalModelGenerator, generate_pairs
from workers.engine.data.hub import load_hub_records
from workers.engine.extract import extract_file, extract_isolated

# ---------------------------------------------------------------------------------------------- extraction


_counters: dict[str, object] = {}


def chunk_token_counter(*, document: Document):
    """The token counter chunking uses for a document: the tokenizer named in settings, else the base model's
    of the pipeline that uploaded it, when either is on this machine; else None (the 4-characters rule)."""
    names = [settings.GARAGE_CHUNK_TOKENIZER]
    job = document.job
    if job is not None and job.parent is not None:
        names.append(job.parent.config.get("base_model", ""))
    for name in filter(None, names):
        if name not in _counters:
            _counters[name] = load_tokenizer_counter(name)
        if _counters[name] is not None:
            return _counters[name]
    return None


def document_extract(*, document: Document, reporter) -> dict:
    """Extract a document's text (format told by content), split it into token-aware chunks with page
    provenance, and import the training examples a JSON, JSONL or CSV document already holds.

    Side effects: updates the Document (text, format, pages, page offsets, timing) and replaces its Chunks and
    the pairs imported from it; with GARAGE_EXTRACT_ISOLATED, runs a child process. A ReadableError propagates: the
    job fails with it, and the document shows that (its status is read from its job)."""
    reporter.phase("extracting", document.filename)
    started = time.monotonic()
    run = extract_isolated if settings.GARAGE_EXTRACT_ISOLATED else extract_file
    with local_path(document.file) as path:
        extracted = run(path, filename=document.filename, limits=extract_limits(),
                        encoding=document.encoding_choice or None,
                        progress=lambda fraction, message="": reporter.progress(0.9 * fraction, message))
    reporter.phase("chunking", f"{extracted.chars:,} characters, {extracted.pages} pages")
    # Records that already are training examples become pairs; chunking them for generation would only
    # make questions about questions.
    chunks = [] if extracted.examples else chunk_text(
        extracted.text, size=settings.GARAGE_CHUNK_TOKENS, overlap=settings.GARAGE_CHUNK_OVERLAP_TOKENS,
        count_tokens=chunk_token_counter(document=document), page_offsets=extracted.page_offsets)
    imported = 0
    with transaction.atomic():
        document.chunks.all().delete()
        document.pairs.filter(source=QAPair.Source.IMPORTED).delete()
        Chunk.objects.bulk_create(
            (Chunk(document=document, index=c.index, text=c.text, char_start=c.char_start, char_end=c.char_end,
                   page=c.page, page_end=c.page_end, token_count=c.token_count,
                   ocr=any(start < c.char_end and c.char_start < end for start, end in extracted.ocr_spans))
             for c in chunks),
            batch_size=1000,
        )
        if extracted.examples:
            imported = qa_pairs_add_examples(dataset=document.dataset, examples=extracted.examples, document=document)
        document.text = extracted.text
        document.format = extracted.format
        document.pages = extracted.pages
        document.chars = extracted.chars
        document.page_offsets = extracted.page_offsets
        document.extract_seconds = round(time.monotonic() - started, 3)
        document.encoding = extracted.encoding or ""
        document.warnings = extracted.warnings
        document.ocr_spans = extracted.ocr_spans
        document.save(update_fields=["text", "format", "pages", "chars", "page_offsets", "extract_seconds", "encoding",
                                     "warnings", "ocr_spans"])
    for warning in extracted.warnings:
        reporter.log(warning)
    summary = f"{document.filename}: {extracted.format.upper()}, {extracted.pages} pages, {extracted.chars:,} characters"
    summary += f", {imported} training examples imported" if extracted.examples else f" in {len(chunks)} chunks"
    if extracted.tables:
        summary += f", {extracted.tables} tables"
    if extracted.encoding:
        summary += f", read as {encoding_label(extracted.encoding)}"
    if extracted.ocr_spans:
        summary += ", some of it read from images by OCR"
    reporter.log(summary)
    reporter.progress(1.0, summary)
    return {"document": str(document.code), "format": extracted.format, "pages": extracted.pages,
            "chars": extracted.chars, "chunks": len(chunks), "imported": imported, "tables": extracted.tables,
            "seconds": document.extract_seconds}


# ---------------------------------------------------------------------------------------------- generation


def _generator(*, dataset: Dataset, options: dict, job: Job | None, stats: dict):
    backend = options.get("backend") or EXTRACTIVE
    if backend == EXTRACTIVE:
        return ExtractiveGenerator(), None
    if backend == LOCAL_MODEL:
        model_path = options["model_path"]
        if model_path != TINY_MODEL_ID and not model_path.startswith("/") and Path(model_path).exists():
            # A Hub id that also names a folder beside the worker would load that folder instead.
            raise ReadableError(f"'{model_path}' is ambiguous on this worker; give a folder's absolute path instead.")
        from workers.engine.weights import model_source

        return LocalModelGenerator(model_source(model_path, cache_dir=settings.GARAGE_MODELS_DIR), task_description=options.get("task_description", ""),
                                   summary=options.get("summary", ""),
                                   max_new_tokens=int(options.get("max_new_tokens") or 1024),
                                   work_dir=str(settings.VAR_DIR)), None
    if backend != ENDPOINT:
        raise ReadableError(f"Unknown generator '{backend}'.")
    from apps.providers.client import provider_client
    from apps.providers.models import ExternalCallAudit

    # The generator scrubs each chunk as it builds its request, so it takes the client's scrubber and audit record.
    client = provider_client(owner=dataset.owner, provider=options.get("provider") or "",
                             purpose=ExternalCallAudit.Purpose.GENERATE, job=job, scrub_pii=bool(options.get("scrub_pii")))

    def on_call(result, pii_replacements):
        client.record(result, pii_replacements)
        if result.attempts:
            stats["external_calls"] += 1
            stats["characters_sent"] += result.characters_sent * result.attempts

    generator = EndpointGenerator(client.chat, task_description=options.get("task_description", ""),
                                  summary=options.get("summary", ""), scrubber=client.scrubber, on_call=on_call)
    return generator, client


def qa_generate(*, dataset: Dataset, reporter, max_pairs: int | None = None, options: dict | None = None,
                job: Job | None = None) -> dict:
    """Replace the dataset's generated pairs with new ones from the generator the options name
    (a job's config; without options, the offline extractive generator with `max_pairs`).

    Side effects: for an endpoint, sends the chunks (PII-scrubbed when asked) to it and writes one audit row
    per request; then deletes earlier generated pairs (those edited by hand, hand-written and imported ones stay) and creates
    QAPairs. When nothing usable came back, raises ReadableError and keeps the earlier pairs."""
    options = dict(options or {"backend": EXTRACTIVE})
    num_pairs = options.get("num_pairs", options.get("max_pairs", max_pairs))
    chunks = list(Chunk.objects.filter(document__in=dataset.documents.ready())
                  .select_related("document").order_by("document_id", "index"))
    if not chunks:
        raise ReadableError("The dataset has no extracted text to make questions from.")
    stats = {"external_calls": 0, "characters_sent": 0}
    generator, client = _generator(dataset=dataset, options=options, job=job, stats=stats)
    try:
        output = generate_pairs([chunk.text for chunk in chunks], generator, num_pairs=num_pairs, reporter=reporter)
    finally:
        if client is not None:
            client.close()
    source = SOURCE_OF_BACKEND[generator.name]
    pairs = [QAPair(dataset=dataset, chunk=chunks[qa.chunk_index], document=chunks[qa.chunk_index].document,
                    question=qa.question, answer=qa.answer, fact=qa.fact[:64], source=source) for qa in output.pairs]
    if not pairs:
        if output.errors:
            raise ReadableError(f"No question-answer pairs were made: {output.errors[0]}")
        if output.malformed:
            raise ReadableError(f"No question-answer pairs were made: none of the model's answers could be read as "
                                f"question-answer pairs ({output.malformed} unusable). Try another model.")
        raise ReadableError("No question-answer pairs could be made: the documents have no complete sentences.")
    with transaction.atomic():
        # Pairs a person edited or wrote stay: regenerating replaces only what a generator made and nobody touched.
        dataset.pairs.filter(source__in=QAPair.GENERATED, edited=False).delete()
        kept_by_hand = qa_pairs_by_hand(dataset=dataset).count()
        QAPair.objects.bulk_create(pairs)
    summary = f"Made {len(pairs)} question-answer pairs from {len(chunks)} chunks with the {generator.name.replace('_', ' ')} generator"
    if output.malformed or output.failed_chunks:
        summary += f" ({output.malformed} malformed items skipped, {output.failed_chunks} chunks failed)"
    reporter.log(summary)
    if kept_by_hand:
        reporter.log(f"Kept {kept_by_hand} pair{'s' if kept_by_hand != 1 else ''} edited or written by hand")
    pii_replacements = getattr(generator, "pii_replacements", 0)
    if pii_replacements:
        reporter.log(f"Replaced {pii_replacements} pieces of personal data with placeholders before sending")
    return {"pairs": len(pairs), "chunks": len(chunks), "backend": generator.name, "requested": output.requested,
            "malformed": output.malformed, "failed_chunks": output.failed_chunks, "pii_replacements": pii_replacements,
            "kept_by_hand": kept_by_hand, **stats}


# ---------------------------------------------------------------------------------------------- curation


def _judge_transport(*, owner, provider: str, job: Job | None, scrub_pii: bool, batch_size: int):
    """(client, complete_many) for the judge: the owner's saved provider or the site default, every request
    audited, and personal data scrubbed first when asked (apps.providers.client). The key is decrypted here, in the
    worker."""
    from apps.providers.client import provider_client
    from apps.providers.models import ExternalCallAudit

    client = provider_client(owner=owner, provider=provider or "", purpose=ExternalCallAudit.Purpose.JUDGE, job=job,
                             scrub_pii=scrub_pii)

    def complete_many(conversations, **params):  # params: what the judge adds, such as response_format
        # About 20 tokens per rated pair, with room for a model that adds a sentence around the JSON.
        return client.complete_many(conversations, temperature=0, max_tokens=128 + 20 * batch_size, **params)

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


def dataset_import_file(*, dataset: Dataset, job_config: dict, reporter) -> dict:
    """Run a file import (the job's body): read the stored file within the import limits (GARAGE_IMPORT_MAX_ROWS,
    GARAGE_IMPORT_MAX_MB; Parquet's are checked from its footer before anything is decoded), recognise the records
    or apply the mapping. Side effects: creates QAPairs with source "imported" and records the file's format on its
    Document. A ReadableError propagates: the job fails with it, and the document shows that (its status is read
    from its job)."""
    document = Document.objects.get(pk=job_config["document"], dataset=dataset)
    reporter.phase("reading", document.filename)
    with document.file.open("rb") as stored:
        data = stored.read(settings.GARAGE_MAX_UPLOAD_BYTES + 1)
    file_format, records = load_records(data, document.filename, _import_limits())
    del data
    reporter.progress(0.5, f"{len(records):,} rows read")
    examples, shape, skipped = _examples(records, job_config.get("mapping"), f"'{document.filename}'")
    if not examples:
        raise ReadableError(f"'{document.filename}' has no rows with both a question and an answer.")
    with transaction.atomic():
        imported = qa_pairs_add_examples(dataset=dataset, examples=examples, document=document)
        Document.objects.filter(pk=document.pk).update(format=file_format, pages=1)
    skipped += len(examples) - imported
    reporter.log(f"Imported {imported:,} examples from {document.filename} ({shape}); skipped {skipped:,} rows")
    return {"imported": imported, "skipped": skipped, "shape": shape, "document": str(document.code),
            "filename": document.filename}


def dataset_import_hub(*, dataset: Dataset, job_config: dict, reporter) -> dict:
    """Run a Hub import (the job's body). Side effects: creates a Document standing for the Hub dataset and the
    imported QAPairs (the document has no job: it is made whole, in one transaction with its pairs, so it shows ready).
    Raises ReadableError when the Hub cannot be reached or the data is not recognised."""
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
                                           format=Document.HUB_FORMAT, pages=1)
        imported = qa_pairs_add_examples(dataset=dataset, examples=examples, document=document)
    reporter.log(f"Imported {imported:,} examples from {hub_id} ({shape}); skipped {skipped + len(examples) - imported:,} rows")
    return {"imported": imported, "skipped": skipped + len(examples) - imported, "shape": shape, "document": str(document.code)}


def dataset_import_run(*, dataset: Dataset, job_config: dict, reporter) -> dict:
    """The import job's body: a stored file (config `document`) or a Hub dataset (config `hub_id`)."""
    if job_config.get("document"):
        return dataset_import_file(dataset=dataset, job_config=job_config, reporter=reporter)
    return dataset_import_hub(dataset=dataset, job_config=job_config, reporter=reporter)


# ---------------------------------------------------------------------------------------------- job types

# The extraction process is killed at GARAGE_EXTRACT_TIME_LIMIT; its job's own limit (GARAGE_JOB_TIME_LIMITS) leaves
# room for the process to start and for chunking and saving afterwards.
@job_type(Job.Kind.EXTRACT, after=(pipeline_advance,))
def extract_job(job, reporter):
    """Extract a document's text and chunk it. Side effects: see document_extract."""
    return document_extract(document=Document.objects.get(pk=job.config["document"]), reporter=reporter)


@job_type(Job.Kind.GENERATE, after=(pipeline_advance,))
def generate_job(job, reporter):
    """Make QA pairs with the generator in the job's config. Runs on queue `default`, or `gpu` for a local
    model (the queue is chosen when the job is created). Side effects: see qa_generate (external requests
    and audit rows for an endpoint; the dataset's generated pairs replaced)."""
    dataset = Dataset.objects.get(pk=job.config["dataset"])
    options = job.config if "backend" in job.config else None  # jobs queued before generators were chosen
    return qa_generate(dataset=dataset, max_pairs=job.config.get("max_pairs"), options=options, job=job, reporter=reporter)


@job_type(Job.Kind.CURATE)
def curate_job(job, reporter):
    """Curate a dataset's pairs. Side effects: see dataset_curate."""
    return dataset_curate(dataset=Dataset.objects.get(pk=job.config["dataset"]), options=job.config.get("options", {}),
                          reporter=reporter, job=job)


@job_type(Job.Kind.IMPORT)
def import_job(job, reporter):
    """Import training examples from a stored file or a Hub dataset (queue `default`). Side effects: see
    dataset_import_run (pairs created; the file's Document shows this job's outcome as its status)."""
    return dataset_import_run(dataset=Dataset.objects.get(pk=job.config["dataset"]), job_config=job.config, reporter=reporter)
