from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.training.models import FineTune


def finetune_list_for_user(*, user) -> QuerySet[FineTune]:
    return FineTune.objects.filter(owner=user).select_related("dataset", "job")


def finetune_get_for_user(*, user, code) -> FineTune:
    """The user's fine-tune; 404 for anyone else."""
    try:
        return FineTune.objects.select_related("dataset", "job").get(owner=user, code=code)
    except (FineTune.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such model.")
