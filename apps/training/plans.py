"""Reads for the training forms: which models this server can run now, and the recommended settings of a run with
the pre-flight planner's estimate, before anything is queued.

The web process never loads torch: the device is the one the GPU worker recorded when it started
(workers.common.planner.record_device), or, before any worker has, a guess at this machine's CPU. The examples'
lengths are approximate (characters / 4; no tokenizer is loaded here)."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import Value
from django.db.models.functions import Coalesce, Length

from apps.datasets.models import Chunk, Dataset, DatasetVersion, VersionExample
from apps.training.model_choices import GROUPS as PICKER_GROUPS
from apps.training.model_choices import default_model_choice, local_model_folders, model_size
from apps.training.services import DEFAULTS
from workers.common.catalogue import CATALOGUE, default_base_model, hub_online
from workers.common.planner import Device, device_facts_path, estimate, local_cpu_device, recorded_device_facts
from workers.common.recommend import example_tokens, model_facts_for, recommend

NO_WORKER_NOTE = "A rough estimate for the CPU of this machine: no GPU worker has reported its measured device yet."
# The length the picker's speeds are quoted at: a short question and answer.
PICKER_LENGTH = 128


def worker_device() -> tuple[Device, dict]:
    """(device, facts about it for the page): what the GPU worker recorded, else this machine's CPU with a note."""
    recorded = recorded_device_facts(device_facts_path(settings.VAR_DIR))
    if recorded:
        device = Device.from_dict(recorded)
        where = "the GPU worker's GPU" if device.kind == "cuda" else "the training worker's CPU (it has no GPU)"
        return device, {"source": "worker", "unsloth": bool(recorded.get("unsloth")),
                        "note": f"Estimated for {where}: {device.name}."}
    return local_cpu_device(), {"source": "this machine", "unsloth": False, "note": NO_WORKER_NOTE}


def default_model() -> str:
    """The model the forms and the API propose: the best real model installed for the worker's device."""
    return default_model_choice()


# ---------------------------------------------------------------------------------------------- the model list

# The pickers' groups (apps.training.model_choices), and the catalogue's models this server cannot run now. Training
# starts from a base model only, so its picker has no group of the user's own models.
GROUPS = {**{group: PICKER_GROUPS[group] for group in ("installed", "hub", "test")},
          "unavailable": "Not on this server"}


def _speed(architecture, parameters: int, batch_size: int, device: Device, backend: str) -> float | None:
    if architecture is None:
        return None
    plan = estimate(architecture=architecture, parameters=parameters, method="lora", backend=backend,
                    batch_size=batch_size, max_length=PICKER_LENGTH, lora_r=16, device=device)
    return plan.seconds_per_step


def model_list() -> list[dict]:
    """Every catalogue entry and every model folder of GARAGE_LOCAL_MODEL_DIRS, each with where it stands on this
    server (`installed`: its weights are here; `available`: it can run now, downloaded first when from the Hub),
    its picker group, its recommended settings and its expected seconds per step (LoRA at its batch, 128 tokens) on
    the worker's device. The default first within its group."""
    device, facts = worker_device()
    backend = "unsloth" if device.kind == "cuda" and facts["unsloth"] else "trl"
    online = hub_online()
    default = default_base_model(device_kind=device.kind, online=online)
    items = []
    for entry in CATALOGUE.values():
        installed = entry.installed
        available = installed or (entry.from_hub and online)
        group = "test" if entry.test_only else "installed" if installed else "hub" if available else "unavailable"
        model = model_facts_for(entry.id)
        items.append({
            "id": entry.id, "label": entry.label, "family": entry.family, "parameters": entry.parameters,
            "max_length": entry.max_length, "chat_template": entry.chat_template, "instruct": entry.instruct,
            "multimodal": entry.multimodal, "package": entry.package, "upstream_id": entry.upstream_id,
            "notes": entry.notes, "installed": installed, "available": available, "test_only": entry.test_only,
            "group": group, "default": entry.id == default, "recommended": entry.recommended.as_dict(),
            "seconds_per_step": _speed(model.architecture, entry.parameters, entry.recommended.batch_size, device,
                                       backend),
        })
    for folder in local_model_folders():
        model = model_facts_for(folder, folder)
        items.append({
            "id": folder, "label": Path(folder).name, "family": "", "parameters": model.parameters or 0,
            "max_length": model.context or 0, "chat_template": model.chat_template, "instruct": False,
            "multimodal": False, "package": "", "upstream_id": "", "notes": f"A model folder of this server: {folder}",
            "installed": True, "available": True, "test_only": False, "group": "installed", "default": False,
            "recommended": model.settings.as_dict(),
            "seconds_per_step": _speed(model.architecture, model.parameters or 0, model.settings.batch_size, device,
                                       backend),
        })
    items.sort(key=lambda item: (list(GROUPS).index(item["group"]), not item["default"]))
    return items


def model_label(item: dict) -> str:
    """What the picker shows: the name, the size (and download) and the expected speed on the worker's device."""
    parts = [item["label"]]
    if item["parameters"] and not item["test_only"]:
        parts.append(model_size(item["parameters"], download=item["group"] == "hub"))
    if item["seconds_per_step"]:
        parts.append(f"~{item['seconds_per_step']:.2g} s/step" if item["seconds_per_step"] < 10
                     else f"~{item['seconds_per_step']:.0f} s/step")
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------------- one run's plan


def training_example_characters(*, version: DatasetVersion | None = None, dataset: Dataset | None = None) -> list[int]:
    """Characters of each example training would use (question, answer and system prompt together): a version's
    training split, or the pairs of a dataset that freezing would keep for training (the same split as
    dataset_version_freeze makes)."""
    chars = Length("question") + Length("answer") + Coalesce(Length("system"), Value(0))
    if version is not None:
        return list(version.examples.filter(split=VersionExample.Split.TRAIN).annotate(chars=chars)
                    .values_list("chars", flat=True))
    if dataset is None:
        return []
    from apps.datasets.services.versions import evaluation_splits

    rows = list(dataset.pairs.included().order_by("id").annotate(chars=chars).values_list("question", "fact", "chars"))
    splits = evaluation_splits([(question, fact) for question, fact, _ in rows],
                               unseen_ratio=settings.GARAGE_HELDOUT_RATIO, recall_ratio=settings.GARAGE_RECALL_RATIO)
    return [count for position, (_, _, count) in enumerate(rows) if position not in splits]


def training_passage_characters(*, version: DatasetVersion | None = None, dataset: Dataset | None = None) -> list[int]:
    """Characters of each chunk of the documents the examples came from: the passages trained beside the pairs when
    the documents' own text is (see apps.training.services.version_passages, which also drops the sentences that
    answer unseen facts: a little less than counted here)."""
    if version is not None:
        documents = version.examples.exclude(document=None).values("document_id")
    elif dataset is not None:
        documents = dataset.pairs.included().exclude(document=None).values("document_id")
    else:
        return []
    return list(Chunk.objects.filter(document_id__in=documents).annotate(chars=Length("text"))
                .values_list("chars", flat=True))


def training_plan(*, base_model: str = "", method: str = "lora", backend: str = "auto",
                  version: DatasetVersion | None = None, dataset: Dataset | None = None,
                  chosen: dict | None = None, document_text: bool | None = None) -> dict:
    """The recommended settings for training `base_model` (default: default_model()) on a version or a dataset (or,
    with neither, on pairs not made yet), with the reasons, the warnings and the planner's estimate on the worker's
    device. `chosen`: settings the person set, kept. `document_text`: whether the documents' own text is trained on
    beside the pairs (None: the default option). `base_model` must already be clean (base_model_clean)."""
    if document_text is None:
        document_text = bool(DEFAULTS.get("document_text", False))
    device, facts = worker_device()
    name = base_model or default_base_model(device_kind=device.kind)
    model = model_facts_for(name, name if name.startswith("/") else None)
    if backend == "auto":
        backend = "unsloth" if device.kind == "cuda" and facts["unsloth"] else "trl"
    has_data = version is not None or dataset is not None
    lengths = ([example_tokens(n, model.chat_template) for n in training_example_characters(version=version,
                                                                                          dataset=dataset)]
               if has_data else None)
    passages = training_passage_characters(version=version, dataset=dataset) if has_data and document_text else None
    advice = recommend(model=model, method=method, token_lengths=lengths, passage_characters=passages, device=device,
                       backend=backend, cpu_budget_minutes=settings.GARAGE_CPU_TIME_BUDGET_MINUTES, chosen=chosen)
    notes = [facts["note"]]
    if model.test_only and name == default_base_model(device_kind=device.kind):
        notes.append("No real model is installed on this server, so the tiny test model is proposed: install one "
                     "with `make models` (SmolLM2 135M Instruct and Gemma 3 270M) and restart the workers.")
    return {
        "base_model": name, "label": model.label, "test_only": model.test_only, "method": method, "backend": backend,
        "options": advice.options, "reasons": advice.reasons, "warnings": advice.warnings, "notes": notes,
        "summary": advice.summary(), "examples": advice.examples, "passages": advice.passages, "steps": advice.steps,
        "epochs": advice.epochs,
        "budget_limited": advice.budget_limited, "budget_pairs": advice.budget_pairs,
        "budget_minutes": settings.GARAGE_CPU_TIME_BUDGET_MINUTES if device.kind == "cpu" else None,
        "seconds_per_step": advice.seconds_per_step, "train_seconds": advice.train_seconds,
        "plan": _plan_dict(advice.plan),
        "device": {"kind": device.kind, "name": device.name, "memory_gib": round(device.memory_bytes / 2**30, 1),
                   "source": facts["source"], "note": facts["note"]},
    }


def _plan_dict(plan) -> dict | None:
    if plan is None:
        return None
    return {"fits": plan.fits, "peak_gib": plan.peak_gib, "seconds_per_step": plan.seconds_per_step,
            "breakdown": plan.breakdown, "suggestions": plan.suggestions, "summary": plan.summary()}


def training_defaults(*, base_model: str, method: str = "lora", version: DatasetVersion | None = None,
                      dataset: Dataset | None = None, chosen: dict | None = None,
                      document_text: bool | None = None) -> dict:
    """The options a fine-tune starts with when the person named only some (the API, the pipeline): the
    recommendation for this model, data and device, with their own values on top."""
    plan = training_plan(base_model=base_model, method=method, version=version, dataset=dataset, chosen=chosen,
                         document_text=document_text)
    return plan_options(plan, chosen)


def plan_options(plan: dict, chosen: dict | None) -> dict:
    """A plan's recommended options with the values the person set on top."""
    return {**plan["options"], **{k: v for k, v in (chosen or {}).items() if v not in (None, "")}}


def catalogue_choices_for_form() -> tuple[list, str]:
    """(grouped choices for a <select>, the default id): [(group label, [(id, label), ...]), ...], only what can
    run now."""
    items = [item for item in model_list() if item["available"]]
    grouped = []
    for group, title in GROUPS.items():
        members = [(item["id"], model_label(item)) for item in items if item["group"] == group]
        if members:
            grouped.append((title, members))
    default = next((item["id"] for item in items if item["default"]), "")
    return grouped, default

