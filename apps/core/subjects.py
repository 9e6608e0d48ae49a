"""Job subjects: what a job belongs to (a model, dataset, document or run) and its page. Each app declares, for the
config key it owns, how to find its thing from the id a job's config holds, in its web-side `subjects.py` (loaded by
its AppConfig.ready(); never its `jobs.py`, which is the worker side and imports the engine):

    @job_subject_kind("finetune", priority=60)
    def finetune_subject(*, job, pk) -> JobSubject | None: ...

A job's config may hold several ids (an evaluation also names its model, an import its dataset and its document), so
the most specific subject wins: apps.core.selectors.job_subject asks the declared kinds in increasing `priority`, and
the first thing found is the subject. The priorities in use: held-out evaluation 10, benchmark 20, GRPO run 30, reward
preview 40, prompt optimization 50, model 60, dataset 70, document 80."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse


@dataclass(frozen=True)
class JobSubject:
    """The thing a job works on and its page: `label` reads "the model “X”", `name` is X alone."""

    label: str
    name: str
    url: str


def job_subject_page(noun: str, name, url_name: str, code) -> JobSubject:
    """The usual subject: "<noun> “<name>”", linked to the page `url_name` of the thing with this code."""
    return JobSubject(label=f"{noun} “{name}”", name=str(name), url=reverse(url_name, args=[code]))


@dataclass(frozen=True)
class JobSubjectKind:
    config_key: str
    priority: int  # lower is asked first: the most specific subject wins
    find: Callable  # (*, job, pk) -> JobSubject | None; pk is the int id under config_key; None when not the owner's


_KINDS: dict[str, JobSubjectKind] = {}


def job_subject_kind(config_key: str, *, priority: int, find: Callable | None = None):
    """Declare how a job whose config holds an id under `config_key` finds its subject. Used as a decorator, or called
    with `find`."""

    def register(find: Callable) -> Callable:
        known = _KINDS.get(config_key)
        if known is not None and known.find.__qualname__ != find.__qualname__:
            raise ImproperlyConfigured(f"Two job subjects declare the config key '{config_key}': "
                                       f"{known.find.__qualname__} and {find.__qualname__}.")
        clash = [kind.config_key for kind in _KINDS.values()
                 if kind.priority == priority and kind.config_key != config_key]
        if clash:  # an equal priority would leave which subject wins to the order the apps are installed in
            raise ImproperlyConfigured(f"The job subjects '{config_key}' and '{clash[0]}' have the same priority "
                                       f"{priority}.")
        _KINDS[config_key] = JobSubjectKind(config_key=config_key, priority=priority, find=find)
        return find

    return register(find) if find is not None else register


def job_subject_kinds() -> list[JobSubjectKind]:
    """The declared kinds, most specific first."""
    return sorted(_KINDS.values(), key=lambda kind: kind.priority)
