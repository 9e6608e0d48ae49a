"""Writes of the training app: starting fine-tunes and recording what they produced."""
from dataclasses import fields
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.services import dataset_version_freeze
from apps.training.models import FineTune
from workers.tiny_model import TINY_MODEL_ID
from workers.train import TrainConfig, train

# Settings a user may choose, with their bounds; everything else is fixed by the engine.
TUNABLE = {"max_steps": (1, 100_000), "learning_rate": (1e-7, 1.0), "batch_size": (1, 1024), "max_length": (16, 32_768),
           "lora_r": (1, 512), "lora_alpha": (1, 1024), "seed": (0, 2**31 - 1)}
DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name in TUNABLE}


def finetune_options(raw: dict) -> dict:
    """Validate user-chosen hyperparameters against TUNABLE; readable ValidationError otherwise."""
    options = dict(DEFAULTS)
    for name, value in (raw or {}).items():
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


def finetune_create(*, owner, version: DatasetVersion, base_model: str = TINY_MODEL_ID,
                    method: str = FineTune.Method.LORA, options: dict | None = None, name: str = "",
                    parent: Job | None = None) -> FineTune:
    """Create a fine-tune of a frozen dataset version and queue its training job on the `gpu` queue."""
    if method not in FineTune.Method.values:
        raise ValidationError(f"Unknown method '{method}'.")
    if version.example_count == 0:
        raise ValidationError("This dataset version has no examples.")
    options = finetune_options(options or {})
    dataset = version.dataset
    with transaction.atomic():
        finetune = FineTune.objects.create(owner=owner, dataset=dataset, version=version,
                                           base_model=base_model or TINY_MODEL_ID, method=method, config=options,
                                           name=name or f"{dataset.name} v{version.number} ({method})")
        finetune.job = job_create(owner=owner, kind=Job.Kind.TRAIN, queue="gpu", title=f"Fine-tune {finetune.name}",
                                  config={"finetune": finetune.pk}, parent=parent)
        finetune.save(update_fields=["job"])
    return finetune


def finetune_create_from_dataset(*, owner, dataset: Dataset, note: str = "Frozen for training", **kwargs) -> FineTune:
    """Freeze the dataset's current pairs into a new version and fine-tune on it, both or neither."""
    with transaction.atomic():
        version = dataset_version_freeze(dataset=dataset, note=note)
        return finetune_create(owner=owner, version=version, **kwargs)


def finetune_output_dir(finetune: FineTune) -> Path:
    return Path(settings.GARAGE_ARTIFACTS_DIR) / str(finetune.code)


def finetune_run(*, finetune: FineTune, reporter) -> dict:
    """Run the training engine for a fine-tune and record its metrics and artifact.

    Side effects: writes model files under the artifacts folder and updates the FineTune row."""
    pairs = [{"question": q, "answer": a} for q, a in finetune.version.examples.values_list("question", "answer")]
    config = TrainConfig(base_model=finetune.base_model, output_dir=str(finetune_output_dir(finetune)), pairs=pairs,
                         method=finetune.method, **finetune.config)
    result = train(config, reporter)
    finetune.metrics = {k: result[k] for k in ("train_steps", "loss_first", "loss_last", "em_before", "em_after",
                                               "tokens_per_s", "train_seconds", "examples")}
    finetune.artifact = str(Path(result["artifact"]).relative_to(settings.GARAGE_ARTIFACTS_DIR))
    finetune.save(update_fields=["metrics", "artifact"])
    return {**finetune.metrics, "finetune": str(finetune.code)}


def finetune_artifact_path(finetune: FineTune) -> Path | None:
    """The artifact's absolute path if it exists; the stored path is confined to the artifacts folder."""
    if not finetune.artifact:
        return None
    root = Path(settings.GARAGE_ARTIFACTS_DIR).resolve()
    path = (root / finetune.artifact).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path
