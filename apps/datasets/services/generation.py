"""Writes of the datasets app: queueing the making of question-answer pairs from extracted documents, with the
generator chosen per run (workers.common.generation.BACKENDS; apps.datasets.jobs.qa_generate runs it): offline
extractive (the default), an OpenAI-compatible endpoint (the user's saved provider or the site default), or a local
Hugging Face model on the GPU worker."""
from django.core.exceptions import ValidationError

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import Dataset, QAPair
from apps.training.base_models import base_model_clean
from workers.common.generation import BACKENDS

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
    if parent is None and not dataset.documents.ready().exists():
        raise ValidationError("Upload a document and wait for its extraction before generating pairs.")
    queue = "gpu" if options["backend"] == LOCAL_MODEL else "default"
    return job_create(owner=dataset.owner, kind=Job.Kind.GENERATE, title=f"Generate pairs for {dataset.name}",
                      config={"dataset": dataset.pk, "max_pairs": options["num_pairs"], **options},
                      parent=parent, queue=queue)


def qa_pair_delete(*, pair: QAPair) -> None:
    pair.delete()
