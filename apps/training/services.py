"""Writes of the training app: starting fine-tunes and recording what they produced."""
from dataclasses import fields
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.options import options_clean
from apps.core.services import job_create
from apps.datasets.models import Chunk, Dataset, DatasetVersion, VersionExample
from apps.datasets.services import dataset_version_freeze
from apps.training.base_models import base_model_clean
from apps.training.models import FineTune
from apps.training.names import finetune_default_name
from apps.training.selectors import model_choice_finetune
from workers.common.options import Bool, Choice, Float, Int, Text
from workers.common.splits import passages_without
from workers.common.training import TrainConfig

# Settings a user may choose, with their bounds; everything else is fixed by the engine.
TUNABLE = {"max_steps": (1, 100_000), "learning_rate": (1e-7, 1.0), "batch_size": (1, 1024), "max_length": (16, 32_768),
           "gradient_accumulation": (1, 1024), "lora_r": (1, 512), "lora_alpha": (1, 1024), "lora_dropout": (0.0, 0.9),
           "warmup_ratio": (0.0, 0.5), "checkpoint_every": (0, 100_000), "seed": (0, 2**31 - 1), "epochs": (0.0, 1000.0),
           "eval_every": (0, 100_000)}
SWITCHES = ("packing", "train_on_responses_only", "document_text", "replay")  # on/off settings
# Text settings with their longest length. The system prompt is not an engine setting: finetune_run writes it into
# every example without a system prompt of its own (see finetune_system_prompt), so it never reaches TrainConfig.
TEXTS = {"system_prompt": 4000}
# Jobs save a checkpoint every 50 steps, so a run whose worker dies, or that was cancelled, can continue.
# document_text and replay (not engine settings): the documents' own text, and the base model's own answers to a
# shipped set of general questions (so that it keeps what it knew), are trained on beside the pairs (finetune_run).
DEFAULTS = {**{f.name: f.default for f in fields(TrainConfig) if f.name in TUNABLE or f.name in SWITCHES},
            "checkpoint_every": 50, "system_prompt": "", "document_text": True, "replay": True}
BACKENDS = {"auto": "Automatic (Unsloth on a GPU when installed)", "unsloth": "Unsloth", "trl": "TRL + PEFT"}
# The same settings as one schema (workers.common.options), which finetune_options checks. The forms carry the backend
# among the options (finetune_create reads it from there), so it is one of them too.
OPTIONS = {**{name: (Float if isinstance(DEFAULTS[name], float) else Int)(DEFAULTS[name], low, high)
              for name, (low, high) in TUNABLE.items()},
           **{name: Bool(DEFAULTS[name]) for name in SWITCHES},
           **{name: Text(DEFAULTS[name], limit, unix_newlines=True) for name, limit in TEXTS.items()},
           "backend": Choice("auto", tuple(BACKENDS))}


# The settings that depend on the model (its catalogue entry's TrainingSettings): learning rate, LoRA, batch, warm-up.
MODEL_SETTINGS = ("learning_rate", "batch_size", "lora_r", "lora_alpha", "warmup_ratio")


def finetune_options(raw: dict, *, base_model: str = "", method: str = "lora") -> dict:
    """Validate user-chosen hyperparameters against OPTIONS (TUNABLE, SWITCHES, TEXTS); readable ValidationError
    otherwise, also for a setting that is not one of them. With `base_model`, what `raw` leaves out of
    MODEL_SETTINGS is that model's recommended value (workers.common.catalogue), not the engine's default (which
    suits the tiny test model). The backend is checked but left out: finetune_create stores the one it chose."""
    defaults = dict(DEFAULTS)
    if base_model:
        from workers.common.recommend import model_facts_for

        recommended = model_facts_for(base_model).settings
        defaults.update(learning_rate=recommended.learning_rate(method), batch_size=recommended.batch_size,
                        lora_r=recommended.lora_r, lora_alpha=recommended.lora_alpha,
                        warmup_ratio=recommended.warmup_ratio)
    options = options_clean(OPTIONS, raw, defaults=defaults)
    del options["backend"]
    return options


def training_start_clean(*, user, choice: str) -> tuple[str, FineTune | None]:
    """What a training starts from: (the base model at the root of its lineage, the user's tuned model it continues
    or None). `choice` is a base model (see base_model_clean) or one of the user's tuned models that finished
    training, "finetune:<code>" (Http404 for anyone else's). Raises ValidationError otherwise."""
    parent = model_choice_finetune(user=user, choice=choice)
    if parent is None:
        return base_model_clean(name=choice), None
    if not parent.artifact:
        raise ValidationError(f"The model '{parent.name}' has not finished training yet.")
    return parent.base_model, parent


def finetune_create(*, owner, version: DatasetVersion, base_model: str, method: str = FineTune.Method.LORA,
                    backend: str = "auto", options: dict | None = None, name: str = "",
                    parent: Job | None = None) -> FineTune:
    """Create a fine-tune of a frozen dataset version and queue its training job on the `gpu` queue. Settings that
    `options` leaves out are the base model's recommended ones (workers.common.catalogue), not the engine's defaults.
    Callers name the model: the forms, the API and the CLI propose apps.training.plans.default_model(); one of the
    owner's own tuned models ("finetune:<code>", Http404 for anyone else's) makes it that model's child, trained
    further from where it ended. Without a `name`, it is named to tell it apart from the owner's other runs
    (apps.training.names)."""
    if method not in FineTune.Method.values:
        raise ValidationError(f"Unknown method '{method}'.")
    backend = (options or {}).get("backend") or backend  # forms carry the backend among the options
    if backend not in BACKENDS:
        raise ValidationError(f"Unknown backend '{backend}'. Choose one of: {', '.join(BACKENDS)}.")
    if version.example_count == 0:
        raise ValidationError("This dataset version has no examples.")
    base_model, started_from = training_start_clean(user=owner, choice=base_model)
    options = {**finetune_options(options or {}, base_model=base_model, method=method), "backend": backend}
    dataset = version.dataset
    with transaction.atomic():
        name = (name or "").strip()[:200] or finetune_default_name(owner=owner, version=version,
                                                                    base_model=base_model, method=method)
        finetune = FineTune.objects.create(owner=owner, dataset=dataset, version=version, base_model=base_model,
                                           parent=started_from, method=method, config=options, name=name)
        finetune.job = job_create(owner=owner, kind=Job.Kind.TRAIN, queue="gpu", title=finetune_job_title(finetune),
                                  config={"finetune": finetune.pk}, parent=parent)
        finetune.save(update_fields=["job"])
    return finetune


def finetune_job_title(finetune: FineTune) -> str:
    """The title of a fine-tune's training job: it follows the fine-tune's name (shortened to the column, as
    job_create does)."""
    title, limit = f"Fine-tune {finetune.name}", Job._meta.get_field("title").max_length
    return title if len(title) <= limit else title[:limit - 1] + "…"


def finetune_rename(*, finetune: FineTune, name: str) -> FineTune:
    """Rename a fine-tune. Side effects: saves its name and the title of its training job, so that lists and the
    job page say the same. Raises ValidationError for an empty or too long name."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the model a name.")
    if len(name) > 200:
        raise ValidationError(f"The name is longer than 200 characters ({len(name)}).")
    with transaction.atomic():
        finetune.name = name
        finetune.save(update_fields=["name"])
        if finetune.job is not None:
            finetune.job.title = finetune_job_title(finetune)
            finetune.job.save(update_fields=["title"])
    return finetune


def finetune_create_from_dataset(*, owner, dataset: Dataset, note: str = "Frozen for training", **kwargs) -> FineTune:
    """Freeze the dataset's current pairs into a new version and fine-tune on it, both or neither."""
    with transaction.atomic():
        version = dataset_version_freeze(dataset=dataset, note=note)
        return finetune_create(owner=owner, version=version, **kwargs)


def code_version() -> str:
    """The platform's version and, in a git checkout, its commit: part of every trained model's lineage."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("gemma-garage")
    except PackageNotFoundError:
        release = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=settings.BASE_DIR, capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{release}+{commit}" if commit else release


def finetune_output_dir(finetune: FineTune) -> Path:
    """The tuned model's folder: its own, or (for a GRPO model) its run's."""
    return Path(settings.GARAGE_ARTIFACTS_DIR) / (finetune.folder or str(finetune.code))


def finetune_system_prompt(finetune: FineTune, example_system: str = "") -> str:
    """The system prompt an example is trained and evaluated with: its own when it has one, else the fine-tune's
    `system_prompt` option (empty when none was chosen). Training (finetune_run) and the held-out evaluation
    (apps.evaluation.heldout) both ask this, so that the model is measured with the prompt it learned under."""
    return example_system or (finetune.config or {}).get("system_prompt") or ""


def version_passages(*, version: DatasetVersion) -> list[str]:
    """The text of the documents a version's examples came from, chunk by chunk, for training on the documents
    themselves, less the sentences that answer its unseen facts (workers.common.splits.passages_without)."""
    examples = version.examples.all()
    documents = {d for d in examples.values_list("document_id", flat=True) if d is not None}
    texts = Chunk.objects.filter(document_id__in=documents).order_by("document_id", "index").values_list("text", flat=True)
    unseen = examples.filter(split=VersionExample.Split.HELDOUT).values_list("answer", flat=True)
    return passages_without(list(texts), list(unseen))


def artifact_resolve(*, relative: str) -> Path | None:
    """The absolute path of a stored file (a path relative to the artifacts folder) if it exists and stays inside
    that folder; None otherwise, so that no stored or crafted path can reach a file elsewhere."""
    if not relative:
        return None
    root = Path(settings.GARAGE_ARTIFACTS_DIR).resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def finetune_artifact_path(finetune: FineTune) -> Path | None:
    """The training zip's absolute path if it exists (see artifact_resolve)."""
    return artifact_resolve(relative=finetune.artifact)
