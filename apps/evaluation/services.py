"""Writes of the evaluation app: starting benchmark runs (apps.evaluation.jobs runs them in the worker and records
what the model answered)."""
import re
from pathlib import Path

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.models import Job
from apps.core.options import options_clean
from apps.core.services import job_create
from apps.evaluation.models import BenchmarkRun
from apps.training.models import FineTune
from apps.training.model_choices import FINETUNE_PREFIX, model_choice_finetune
from apps.training.base_models import base_model_clean
from workers.common.errors import ReadableError
from workers.common.evaluation import AIME_DEFAULT_SOURCE, HUB_ID_RE, LIMITS, BenchmarkSpec, validate
from workers.common.options import Choice, Float, Int, Text

# Settings a user may choose and their types; SETTINGS below checks them, workers.common.evaluation.validate too.
INTEGER_SETTINGS = ("few_shot", "limit", "seed", "max_new_tokens", "batch_size")
FLOAT_SETTINGS = ("temperature", "top_p")
TEXT_SETTINGS = ("prompt_template", "system_prompt", "subset", "source", "split")
# A small first run by default: a full GSM8K pass (1,319 problems) takes hours on a CPU.
DEFAULT_SETTINGS = {"limit": 50, "few_shot": 0, "subset": "first", "seed": 0, "temperature": 0.0, "top_p": 1.0,
                    "max_new_tokens": 512, "batch_size": 8, "prompt_template": "", "system_prompt": "", "source": "",
                    "split": ""}
# The settings as one schema (workers.common.options) with the engine's bounds (workers.common.evaluation.LIMITS).
# A blank limit means every problem; the prompt template and the system prompt are kept as written, spaces and all.
SETTINGS = {**{name: Int(DEFAULT_SETTINGS[name], *LIMITS[name]) for name in INTEGER_SETTINGS},
            "limit": Int(DEFAULT_SETTINGS["limit"], *LIMITS["limit"], blank=None),
            **{name: Float(DEFAULT_SETTINGS[name], *LIMITS[name]) for name in FLOAT_SETTINGS},
            **{name: Text(DEFAULT_SETTINGS[name], strip=name not in ("prompt_template", "system_prompt"))
               for name in TEXT_SETTINGS},
            "subset": Choice(DEFAULT_SETTINGS["subset"], ("first", "random"))}
DATA_FILE_RE = re.compile(r"^[\w.-]+\.jsonl$")


def benchmark_data_dir() -> Path:
    """Where an administrator puts local benchmark files (AIME JSONL) that users may pick by name. Users never
    name other paths on the server."""
    return Path(django_settings.VAR_DIR) / "benchmarks"


def benchmark_settings(*, benchmark: str, raw: dict | None) -> dict:
    """User-chosen settings (SETTINGS), typed and checked; readable ValidationError otherwise, also for a setting
    that is not one of them. Blank values take defaults; a blank limit means every problem."""
    values = options_clean(SETTINGS, raw)
    if benchmark not in BenchmarkRun.Benchmark.values:
        raise ValidationError(f"Unknown benchmark '{benchmark}'. Choose one of: {', '.join(BenchmarkRun.Benchmark.values)}.")
    if benchmark == BenchmarkRun.Benchmark.GSM8K:
        if values["source"]:
            raise ValidationError("GSM8K uses the problems shipped with Gemma Garage; leave the data source empty.")
        if values["split"] not in ("", "test", "train"):
            raise ValidationError("The GSM8K split must be 'test' or 'train'.")
    else:
        source = values["source"]
        if source and not ((HUB_ID_RE.match(source) and not source.endswith((".json", ".jsonl")))
                           or DATA_FILE_RE.match(source)):
            raise ValidationError("The AIME data must be a Hugging Face dataset id (owner/name) or the name of a "
                                  "JSONL file in the server's benchmark folder, such as aime_2024.jsonl.")
        if DATA_FILE_RE.match(source) and not (benchmark_data_dir() / source).is_file():
            raise ValidationError(f"There is no benchmark file named {source} on the server.")
        if len(values["split"]) > 40:
            raise ValidationError("The split name is too long.")
    spec = BenchmarkSpec(benchmark=benchmark, **values)
    try:
        validate(spec)
    except ReadableError as exc:
        raise ValidationError(str(exc))
    # The prompt actually used is stored, so that a report shows it and a later change of the default does not
    # silently change what an old run meant.
    return {**values, "prompt_template": spec.prompt_template}


def benchmark_run_create(*, owner, benchmark: str, base_model: str = "", finetune: FineTune | None = None,
                         settings: dict | None = None, name: str = "", label: str = "",
                         platform_folder: bool = False) -> BenchmarkRun:
    """Create a benchmark run of a base model or one of the owner's fine-tunes and queue its job on the `gpu`
    queue. A base model must be one a worker may load for anyone (apps.training.base_models.base_model_clean), unless
    `platform_folder` says the caller names a folder the platform made for this owner (a GRPO run's models).
    `base_model` may also name one of the owner's tuned models as "finetune:<code>" (Http404 for anyone else's).
    Raises ValidationError for a missing, forbidden or unfinished model or impossible settings."""
    base_model = (base_model or "").strip()
    if finetune is None and base_model.startswith(FINETUNE_PREFIX):  # a tuned model named as every feature names it
        finetune, base_model = model_choice_finetune(user=owner, choice=base_model), ""
    if bool(base_model) == bool(finetune):
        raise ValidationError("Choose either a base model or one of your fine-tuned models.")
    if finetune is not None:
        if finetune.owner_id != owner.pk:
            raise ValidationError("Choose one of your own fine-tuned models.")
        if not finetune.artifact:
            raise ValidationError(f"The model '{finetune.name}' has not finished training yet.")
        label = finetune.name
    else:
        if len(base_model) > 300:
            raise ValidationError("The base model name is too long.")
        if not platform_folder:
            base_model = base_model_clean(name=base_model)
        label = label or base_model
    values = benchmark_settings(benchmark=benchmark, raw=settings)
    benchmark_label = BenchmarkRun.Benchmark(benchmark).label
    with transaction.atomic():
        run = BenchmarkRun.objects.create(owner=owner, benchmark=benchmark, base_model=base_model, finetune=finetune,
                                          model_label=label, settings=values, name=(name or "").strip()[:200])
        run.job = job_create(owner=owner, kind=Job.Kind.BENCHMARK, queue="gpu",
                             title=f"{benchmark_label} benchmark of {label}"[:200], config={"benchmark_run": run.pk})
        run.save(update_fields=["job"])
    return run


def benchmark_spec(*, run: BenchmarkRun) -> BenchmarkSpec:
    values = {k: v for k, v in run.settings.items() if k in DEFAULT_SETTINGS}
    if run.benchmark == BenchmarkRun.Benchmark.AIME:
        source = values.get("source") or AIME_DEFAULT_SOURCE
        values["source"] = str(benchmark_data_dir() / source) if DATA_FILE_RE.match(source) else source
    return BenchmarkSpec(benchmark=run.benchmark, **values)
