"""Reads of the held-out evaluation. Every access goes through the owner's selectors (404 for anyone else)."""
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.evaluation.models import HeldoutEvaluation, HeldoutItem

CHANGES = ("all", "improved", "worse", "same")


def heldout_evaluation_list_for_user(*, user, finetune=None) -> QuerySet[HeldoutEvaluation]:
    evaluations = HeldoutEvaluation.objects.filter(owner=user).select_related("job", "finetune")
    return evaluations.filter(finetune=finetune) if finetune is not None else evaluations


def heldout_evaluation_get_for_user(*, user, code) -> HeldoutEvaluation:
    """The user's held-out evaluation; 404 for anyone else."""
    try:
        return (HeldoutEvaluation.objects.select_related("job", "finetune", "finetune__version", "finetune__dataset")
                .get(owner=user, code=code))
    except (HeldoutEvaluation.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such evaluation.")


def heldout_evaluation_latest(*, finetune) -> HeldoutEvaluation | None:
    """The fine-tune's most recent evaluation, finished or not."""
    return finetune.heldout_evaluations.select_related("job").order_by("-created_at", "-id").first()


def heldout_item_list(*, evaluation: HeldoutEvaluation, change: str | None = None) -> QuerySet[HeldoutItem]:
    """The evaluation's questions in the version's order, with their source documents and pages; `change` is
    improved, worse or same (anything else: all)."""
    items = evaluation.items.select_related("example__document", "example__chunk__document")
    return items.filter(change=change) if change in HeldoutItem.Change.values else items


def heldout_items_changed_most(*, evaluation: HeldoutEvaluation) -> tuple[list[HeldoutItem], list[HeldoutItem]]:
    """(most improved, most worsened) questions, largest token-F1 change first, as the run chose them."""
    results = evaluation.results or {}
    wanted = {"improved": results.get("most_improved") or [], "worse": results.get("most_worse") or []}
    by_index = {item.index: item for item in
                heldout_item_list(evaluation=evaluation).filter(index__in=wanted["improved"] + wanted["worse"])}
    return ([by_index[i] for i in wanted["improved"] if i in by_index],
            [by_index[i] for i in wanted["worse"] if i in by_index])
