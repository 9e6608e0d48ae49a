"""Reads of the prompts app. Every getter answers 404 to anyone but the owner."""
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.core.models import JobEvent
from apps.prompts.models import OptimizedPrompt, PromptCandidate, SavedPrompt


def optimized_prompt_list_for_user(*, user) -> QuerySet[OptimizedPrompt]:
    return OptimizedPrompt.objects.filter(owner=user).select_related("job", "version__dataset")


def optimized_prompt_get_for_user(*, user, code) -> OptimizedPrompt:
    """The user's optimization run; 404 for anyone else."""
    try:
        return optimized_prompt_list_for_user(user=user).get(code=code)
    except (OptimizedPrompt.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such prompt optimization.")


def optimized_prompt_candidates(*, run: OptimizedPrompt) -> tuple[list[PromptCandidate], list[int], int]:
    """(the candidates scored so far, the indices of those on the Pareto front, the id of the run's last event): what
    the run page draws at once, before it follows the job's events from that id. The front is the finished run's, or
    the one the latest candidate's event reported."""
    events = JobEvent.objects.filter(job_id=run.job_id)
    # The id first: a candidate stored after it is drawn again from its event, never missed.
    after = events.order_by("-id").values_list("id", flat=True).first() or 0
    candidates = list(run.candidates.all())
    if "front" in run.result:
        front = run.result["front"]
    else:
        latest = events.filter(type=JobEvent.Type.METRIC, data__has_key="front").order_by("-id").first()
        front = latest.data["front"] if latest else []
    return candidates, front, after


def saved_prompt_list_for_user(*, user) -> QuerySet[SavedPrompt]:
    return SavedPrompt.objects.filter(owner=user).select_related("source_run")


def saved_prompt_get_for_user(*, user, code) -> SavedPrompt:
    """The user's saved prompt; 404 for anyone else."""
    try:
        return saved_prompt_list_for_user(user=user).get(code=code)
    except (SavedPrompt.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such saved prompt.")


# How many saved prompts the pickers of other pages offer (newest first); the saved-prompt list pages show them all.
PICKER_LIMIT = 100


def saved_prompt_choices(*, user) -> list[tuple[str, str]]:
    """(code, name) of the user's newest saved prompts, for the pickers of the playground, benchmark and training
    forms. Nobody else's prompt is ever offered."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    return [(str(code), name) for code, name in
            saved_prompt_list_for_user(user=user).values_list("code", "name")[:PICKER_LIMIT]]


def saved_prompt_apply(*, user, code, system_prompt: str = "") -> str:
    """The system prompt a form or API call ends up with: the saved prompt `code` when one is chosen, else the typed
    `system_prompt`. Http404 for anyone else's prompt (its text never leaves); ValidationError when both are given
    and differ, so that neither silently wins."""
    system_prompt = system_prompt or ""
    if not code:
        return system_prompt
    saved = saved_prompt_get_for_user(user=user, code=code)
    if system_prompt.strip() and system_prompt.strip() != saved.text.strip():
        raise ValidationError(f"Choose the saved prompt '{saved.name}' or write a system prompt, not both.")
    return saved.text
