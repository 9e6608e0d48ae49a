"""Job types: each kind of long work declares, in its app's `jobs.py` (the worker side), how it runs on a worker and
what follows it.

    @job_type(Job.Kind.TRAIN, after=(pipeline_advance, heldout_evaluation_follow, hub_push_follow))
    def finetune_job(job, reporter) -> dict: ...

One Celery task (workers.tasks.run_job) runs any job by its kind. When a job has ended (apps.core.services.job_finish),
each of its type's `after` functions is called with it, in order: the pipeline's next step, the automatic held-out
evaluation, the automatic push, the benchmarks after a GRPO run. They are called where jobs are run and reaped: the
worker side loads every app's `jobs.py` (job_types_load), and the web process never does (import-linter contracts),
so a job the web process ends (a cancelled queued job) is followed by nothing but its parent (see
apps.core.services._parent_follow)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class JobType:
    kind: str
    run: Callable  # (job, reporter) -> result dict, on a worker; raises ReadableError or Cancelled
    after: tuple[Callable, ...] = ()  # (job) -> None, once the job has ended, whatever its status


_TYPES: dict[str, JobType] = {}


def job_type(kind: str, *, after: tuple[Callable, ...] = ()):
    """Declare the function that runs jobs of `kind`, and what follows them."""

    def register(run: Callable) -> Callable:
        known = _TYPES.get(kind)
        if known is not None and known.run.__qualname__ != run.__qualname__:
            raise ImproperlyConfigured(f"Two job types declare the kind '{kind}': {known.run.__qualname__} and "
                                       f"{run.__qualname__}.")
        _TYPES[kind] = JobType(kind=kind, run=run, after=tuple(after))
        return run

    return register


def job_types_load() -> None:
    """Import every installed app's `jobs` module, which declares its job types. Only the worker side calls this: the
    modules import the engine."""
    autodiscover_modules("jobs")


def job_type_get(kind: str) -> JobType | None:
    return _TYPES.get(kind)
