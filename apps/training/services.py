"""Writes of the training app: starting fine-tunes and recording what they produced."""
import re
from dataclasses import fields
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import Chunk, Dataset, DatasetVersion, VersionExample
from apps.datasets.services import dataset_version_freeze
from apps.training.models import FineTune
from apps.training.names import finetune_default_name
from workers.common.catalogue import CATALOGUE
from workers.common.splits import passages_without
from workers.common.training import TrainConfig

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
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


# The settings that depend on the model (its catalogue entry's TrainingSettings): learning rate, LoRA, batch, warm-up.
MODEL_SETTINGS = ("learning_rate", "batch_size", "lora_r", "lora_alpha", "warmup_ratio")


def finetune_options(raw: dict, *, base_model: str = "", method: str = "lora") -> dict:
    """Validate user-chosen hyperparameters against TUNABLE; readable ValidationError otherwise. With `base_model`,
    what `raw` leaves out of MODEL_SETTINGS is that model's recommended value (workers.common.catalogue), not the engine's
    default (which suits the tiny test model)."""
    options = dict(DEFAULTS)
    if base_model:
        from workers.common.recommend import model_facts_for

        recommended = model_facts_for(base_model).settings
        options.update(learning_rate=recommended.learning_rate(method), batch_size=recommended.batch_size,
                       lora_r=recommended.lora_r, lora_alpha=recommended.lora_alpha,
                       warmup_ratio=recommended.warmup_ratio)
    for name, value in (raw or {}).items():
        if name in TEXTS:
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValidationError(f"The {name.replace('_', ' ')} must be text.")
            value = value.replace("\r\n", "\n").strip()
            if len(value) > TEXTS[name]:
                raise ValidationError(f"The {name.replace('_', ' ')} is longer than {TEXTS[name]} characters "
                                      f"({len(value)}).")
            options[name] = value
            continue
        if name in SWITCHES and value not in (None, ""):
            options[name] = value in (True, 1, "1", "true", "True", "on", "yes")
            continue
        if name not in TUNABLE or value in (None, ""):
            continue
        low, high = TUNABLE[name]
        caster = float if isinstance(DEFAULTS[name], float) else int
        try:
            value = caster(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{name.replace('_', ' ')} must be a number.")
        if not low <= value <= high:
            raise ValidationError(f"{name.replace('_', ' ')} must be between {low} and {high}.")
        options[name] = value
    return options


def base_model_clean(*, name: str) -> str:
    """A model the GPU worker may load: a catalogue entry (a PyPI copy only when installed), a Hub id, or a folder
    inside one of GARAGE_LOCAL_MODEL_DIRS (so nobody can point the worker at another user's files).
    Raises ValidationError otherwise."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Choose a base model: one from the catalogue, a Hugging Face Hub id or a local folder.")
    entry = CATALOGUE.get(name)
    if entry is not None:
        if entry.package and not entry.installed:
            raise ValidationError(f"The model '{entry.label}' needs the package {entry.package} on the workers: "
                                  f"install it with {entry.install_hint}.")
        if entry.from_hub:
            _hub_model_reachable(entry.hub_id or entry.id, label=entry.label)
        return name
    if HUB_ID.match(name) and not name.startswith("."):
        _hub_model_reachable(name, label=name)
        return name
    path = PurePosixPath(name)
    allowed = [PurePosixPath(d) for d in settings.GARAGE_LOCAL_MODEL_DIRS]
    if path.is_absolute() and ".." not in path.parts and any(path == d or d in path.parents for d in allowed):
        return str(path)
    where = ", ".join(str(d) for d in allowed) or "none configured (GARAGE_LOCAL_MODEL_DIRS)"
    raise ValidationError(f"The model must be one from the catalogue, a Hugging Face Hub id, or a folder inside the "
                          f"model folders of this server ({where}).")


def _hub_model_reachable(repo_id: str, *, label: str) -> None:
    """A server told to stay offline (HF_HUB_OFFLINE) can load a Hub model only from its local cache: refuse one
    that is not there now, rather than fail in the worker later."""
    from workers.common.catalogue import in_hub_cache
    from workers.common.records import hub_offline

    if hub_offline() and not in_hub_cache(repo_id):
        raise ValidationError(f"The model '{label}' is not on this server, and the server works offline "
                              f"(HF_HUB_OFFLINE): choose an installed model, or download it on a machine that is "
                              f"online into this server's Hugging Face cache.")


def finetune_create(*, owner, version: DatasetVersion, base_model: str, method: str = FineTune.Method.LORA,
                    backend: str = "auto", options: dict | None = None, name: str = "",
                    parent: Job | None = None) -> FineTune:
    """Create a fine-tune of a frozen dataset version and queue its training job on the `gpu` queue. Settings that
    `options` leaves out are the base model's recommended ones (workers.common.catalogue), not the engine's defaults.
    Callers name the model: the forms, the API and the CLI propose apps.training.plans.default_model(). Without a
    `name`, it is named to tell it apart from the owner's other runs (apps.training.names)."""
    if method not in FineTune.Method.values:
        raise ValidationError(f"Unknown method '{method}'.")
    backend = (options or {}).get("backend") or backend  # forms carry the backend among the options
    if backend not in BACKENDS:
        raise ValidationError(f"Unknown backend '{backend}'. Choose one of: {', '.join(BACKENDS)}.")
    if version.example_count == 0:
        raise ValidationError("This dataset version has no examples.")
    base_model = base_model_clean(name=base_model)
    options = {**finetune_options(options or {}, base_model=base_model, method=method), "backend": backend}
    dataset = version.dataset
    with transaction.atomic():
        name = (name or "").strip()[:200] or finetune_default_name(owner=owner, version=version,
                                                                    base_model=base_model, method=method)
        finetune = FineTune.objects.create(owner=owner, dataset=dataset, version=version,
                                           base_model=base_model, method=method, config=options, name=name)
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
    return Path(settings.GARAGE_ARTIFACTS_DIR) / str(finetune.code)


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
