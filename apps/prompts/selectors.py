"""Reads of the prompts app. Every getter answers 404 to anyone but the owner."""
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.prompts.models import OptimizedPrompt, SavedPrompt


def optimized_prompt_list_for_user(*, user) -> QuerySet[OptimizedPrompt]:
    return OptimizedPrompt.objects.filter(owner=user).select_related("job", "version__dataset")


def optimized_prompt_get_for_user(*, user, code) -> OptimizedPrompt:
    """The user's optimization run; 404 for anyone else."""
    try:
        return optimized_prompt_list_for_user(user=user).get(code=code)
    except (OptimizedPrompt.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such prompt optimization.")


def saved_prompt_list_for_user(*, user) -> QuerySet[SavedPrompt]:
    return SavedPrompt.objects.filter(owner=user).select_related("source_run")


def saved_prompt_get_for_user(*, user, code) -> SavedPrompt:
    """The user's saved prompt; 404 for anyone else."""
    try:
        return saved_prompt_list_for_user(user=user).get(code=code)
    except (SavedPrompt.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such saved prompt.")
