"""Writes of the datasets app: making question-answer pairs from extracted documents, with the generator
chosen per run (workers.generate): offline extractive (the default), an OpenAI-compatible endpoint (the
user's saved provider or the site default), or a local Hugging Face model on the GPU worker."""
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import Chunk, Dataset, Document, QAPair
from apps.datasets.selectors import qa_pairs_by_hand
from workers.generate import (
    BACKENDS,
    EndpointGenerator,
    ExtractiveGenerator,
    LocalModelGenerator,
    generate_pairs,
)
from workers.tiny_model import TINY_MODEL_ID

EXTRACTIVE, ENDPOINT, LOCAL_MODEL = BACKENDS
SOURCE_OF_BACKEND = {EXTRACTIVE: QAPair.Source.EXTRACTIVE, ENDPOINT: QAPair.Source.ENDPOINT,
                     LOCAL_MODEL: QAPair.Source.LOCAL_MODEL}
MAX_PAIRS = 10_000
MAX_TASK_CHARS = 2_000
MAX_SUMMARY_CHARS = 8_000


def _default_backend() -> tuple[str, str]:
    """Extractive unless the site configured a default endpoint, in which case that endpoint."""
    from apps.providers.selectors import site_default_endpoint
    from apps.providers.services import SITE_DEFAULT

    return (ENDPOINT, SITE_DEFAULT) if site_default_endpoint() is not None else (EXTRACTIVE, "")


def qa_generate_options(*, owner, dataset: Dataset, backend: str | None = None, provider: str | None = None,
                        model_path: str = "", task_description: str | None = None, num_pairs: int | None = None,
                        summary: str = "", scrub_pii: bool = True) -> dict:
    """The generation options as stored in the job's config (ids only, never keys). Raises ValidationError
    for impossible choices and Http404 for a provider that is not the owner's."""
    from apps.providers.services import provider_choice_validate

    if backend in (None, ""):
        backend, default_provider = _default_backend()
        provider = provider or default_provider
    if backend not in BACKENDS:
        raise ValidationError(f"Unknown generator '{backend}'. Choose one of: {', '.join(BACKENDS)}.")
    if num_pairs is not None:
        try:
            num_pairs = int(num_pairs)
        except (TypeError, ValueError):
            raise ValidationError("The number of pairs must be a whole number.")
        if not 1 <= num_pairs <= MAX_PAIRS:
            raise ValidationError(f"Ask for between 1 and {MAX_PAIRS:,} pairs.")
    task_description = dataset.description if task_description is None else task_description
    task_description, summary = (task_description or "").strip(), (summary or "").strip()
    if len(task_description) > MAX_TASK_CHARS:
        raise ValidationError(f"The task description is longer than {MAX_TASK_CHARS:,} characters.")
    if len(summary) > MAX_SUMMARY_CHARS:
        raise ValidationError(f"The summary is longer than {MAX_SUMMARY_CHARS:,} characters.")
    options = {"backend": backend, "provider": "", "model_path": "", "task_description": task_description,
               "summary": summary, "num_pairs": num_pairs, "scrub_pii": bool(scrub_pii)}
    if backend == ENDPOINT:
        options["provider"] = provider_choice_validate(owner=owner, provider=provider or "")
    elif backend == LOCAL_MODEL:
        from apps.training.services import base_model_clean  # training builds on datasets: imported when needed

        if not (model_path or "").strip():
            raise ValidationError("Give the local model: one from the catalogue, a Hugging Face Hub id or a folder on the GPU worker.")
        options["model_path"] = base_model_clean(name=model_path)
    return options


def qa_generate_start(*, dataset: Dataset, backend: str | None = None, provider: str | None = None,
                      model_path: str = "", task_description: str | None = None, num_pairs: int | None = None,
                      summary: str = "", scrub_pii: bool = True, max_pairs: int | None = None,
                      parent: Job | None = None) -> Job:
    """Queue a job that makes question-answer pairs from the dataset's extracted documents.

    With no backend, the offline extractive generator runs (or the site's default endpoint, when one is
    configured). The choice is recorded in the job's config, with ids only: a provider's key is decrypted
    by the worker when it runs. Side effects: creates the Job (on queue `gpu` for a local model) and enqueues
    it on commit. Raises ValidationError (readable) or Http404 (a provider that is not the owner's)."""
    options = qa_generate_options(owner=dataset.owner, dataset=dataset, backend=backend, provider=provider,
                                  model_path=model_path, task_description=task_description,
                                  num_pairs=num_pairs if num_pairs is not None else max_pairs, summary=summary,
                                  scrub_pii=scrub_pii)
    if parent is None and not dataset.documents.filter(status=Document.Status.READY).exists():
        raise ValidationError("Upload a document and wait for its extraction before generating pairs.")
    queue = "gpu" if options["backend"] == LOCAL_MODEL else "default"
    return job_create(owner=dataset.owner, kind=Job.Kind.GENERATE, title=f"Generate pairs for {dataset.name}",
                      config={"dataset": dataset.pk, "max_pairs": options["num_pairs"], **options},
                      parent=parent, queue=queue)


def _generator(*, dataset: Dataset, options: dict, job: Job | None, stats: dict):
    backend = options.get("backend") or EXTRACTIVE
    if backend == EXTRACTIVE:
        return ExtractiveGenerator(), None
    if backend == LOCAL_MODEL:
        model_path = options["model_path"]
        if model_path != TINY_MODEL_ID and not model_path.startswith("/") and Path(model_path).exists():
            # A Hub id that also names a folder beside the worker would load that folder instead.
            from workers.errors import ReadableError

            raise ReadableError(f"'{model_path}' is ambiguous on this worker; give a folder's absolute path instead.")
        from workers.catalogue import model_source

        return LocalModelGenerator(model_source(model_path, cache_dir=settings.GARAGE_MODELS_DIR), task_description=options.get("task_description", ""),
                                   summary=options.get("summary", ""),
                                   max_new_tokens=int(options.get("max_new_tokens") or 1024),
                                   work_dir=str(settings.VAR_DIR)), None
    if backend != ENDPOINT:
        from workers.errors import ReadableError

        raise ReadableError(f"Unknown generator '{backend}'.")
    from apps.providers.models import ExternalCallAudit
    from apps.providers.services import (
        audit_hook,
        pii_scrubber_for_user,
        provider_endpoint_resolve,
    )

    endpoint = provider_endpoint_resolve(owner=dataset.owner, provider=options.get("provider") or "")
    record = audit_hook(owner=dataset.owner, endpoint=endpoint, purpose=ExternalCallAudit.Purpose.GENERATE, job=job)

    def on_call(result, pii_replacements):
        record(result, pii_replacements)
        if result.attempts:
            stats["external_calls"] += 1
            stats["characters_sent"] += result.characters_sent * result.attempts

    client = endpoint.client()
    scrubber = pii_scrubber_for_user(user=dataset.owner) if options.get("scrub_pii") else None
    generator = EndpointGenerator(client, task_description=options.get("task_description", ""),
                                  summary=options.get("summary", ""), scrubber=scrubber, on_call=on_call)
    return generator, client


def qa_generate(*, dataset: Dataset, reporter, max_pairs: int | None = None, options: dict | None = None,
                job: Job | None = None) -> dict:
    """Replace the dataset's generated pairs with new ones from the generator the options name
    (a job's config; without options, the offline extractive generator with `max_pairs`).

    Side effects: for an endpoint, sends the chunks (PII-scrubbed when asked) to it and writes one audit row
    per request; then deletes earlier generated pairs (those edited by hand, hand-written and imported ones stay) and creates
    QAPairs. When nothing usable came back, raises ReadableError and keeps the earlier pairs."""
    from workers.errors import ReadableError

    options = dict(options or {"backend": EXTRACTIVE})
    num_pairs = options.get("num_pairs", options.get("max_pairs", max_pairs))
    chunks = list(Chunk.objects.filter(document__dataset=dataset, document__status=Document.Status.READY)
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


def qa_pair_delete(*, pair: QAPair) -> None:
    pair.delete()
