"""Reads of the reinforcement-learning app. Every access goes through the owner's selectors (404 for anyone else)."""
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.core.models import JobEvent
from apps.rl.models import GrpoRun, RewardPreview

CHART_POINTS = 2000  # metric events drawn on first load; the websocket adds the rest


def grpo_run_list_for_user(*, user) -> QuerySet[GrpoRun]:
    return GrpoRun.objects.filter(owner=user).select_related("job", "version__dataset")


def grpo_run_get_for_user(*, user, code) -> GrpoRun:
    """The user's GRPO run; 404 for anyone else."""
    try:
        return GrpoRun.objects.select_related("job", "version__dataset", "model", "base_benchmark__job",
                                              "tuned_benchmark__job").get(owner=user, code=code)
    except (GrpoRun.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such GRPO run.")


def reward_preview_list_for_user(*, user) -> QuerySet[RewardPreview]:
    return RewardPreview.objects.filter(owner=user).select_related("job")


def reward_preview_get_for_user(*, user, code) -> RewardPreview:
    """The user's reward preview; 404 for anyone else."""
    try:
        return RewardPreview.objects.select_related("job").get(owner=user, code=code)
    except (RewardPreview.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such preview.")


def grpo_run_history(*, run: GrpoRun) -> list[dict]:
    """The step metrics reported so far (rewards per function, KL, length; rolling samples where present), oldest
    first, each with its event id so that the page can skip what the websocket repeats."""
    if run.job is None:
        return []
    events = (JobEvent.objects.filter(job=run.job, type=JobEvent.Type.METRIC, data__has_key="reward")
              .order_by("-id")[:CHART_POINTS])
    return [{"id": event.pk, **event.data} for event in reversed(list(events))]


def grpo_run_latest_samples(*, history: list[dict]) -> list[dict]:
    """The newest rolling sample of completions and their scores, with its step."""
    for point in reversed(history):
        if point.get("samples"):
            return [{"step": point.get("step"), **sample} for sample in point["samples"]]
    return []
