import uuid

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from apps.datasets.models import VersionExample
from apps.datasets.selectors import dataset_version_get_for_user
from apps.evaluation.models import HeldoutItem
from apps.rl.models import GrpoRun
from apps.training.models import FineTune

# How a form or an API names one of the user's tuned models among base models: "finetune:<code>".
FINETUNE_PREFIX = "finetune:"
# How the platform names a model folder it made itself (a GRPO run's merged model, the tiny model built for a run), for
# a job it queues on that folder: "artifacts:<path relative to the artifacts folder>", which every machine resolves in
# its own artifacts folder (fetched from the bucket when it lacks it). Never accepted from a user.
ARTIFACTS_PREFIX = "artifacts:"


def finetune_list_for_user(*, user) -> QuerySet[FineTune]:
    return FineTune.objects.filter(owner=user).select_related("dataset", "job", "parent", "grpo_run")


def finetune_get_for_user(*, user, code) -> FineTune:
    """The user's fine-tune; 404 for anyone else."""
    try:
        return FineTune.objects.select_related("dataset", "job", "parent", "grpo_run").get(owner=user, code=code)
    except (FineTune.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such model.")


def model_choice_finetune(*, user, choice: str) -> FineTune | None:
    """The user's tuned model a "finetune:<code>" choice names (Http404 for anyone else's or an unknown code), or
    None for a base model."""
    if not str(choice or "").startswith(FINETUNE_PREFIX):
        return None
    try:
        code = uuid.UUID(choice[len(FINETUNE_PREFIX):].strip())
    except ValueError:
        raise Http404("No such model.")
    return finetune_get_for_user(user=user, code=code)


def model_choice_finetune_name(*, choice: str) -> str:
    """The name of the tuned model a "finetune:<code>" choice names, whoever owns it: for labels and default names
    (apps.training.names), never for access (see model_choice_finetune). "a deleted tuned model" when none has that
    code."""
    try:
        finetune = FineTune.objects.filter(code=uuid.UUID(choice[len(FINETUNE_PREFIX):].strip())).only("name").first()
    except ValueError:
        finetune = None
    return finetune.name if finetune is not None else "a deleted tuned model"


# A lineage page stops there: chains and trees of models are short in practice, and a page must stay bounded.
LINEAGE_LIMIT = 200


def finetune_children(*, finetune: FineTune) -> QuerySet[FineTune]:
    """The models trained from this one, oldest first."""
    return FineTune.objects.filter(owner=finetune.owner, parent=finetune).order_by("created_at")


def finetune_lineage(*, finetune: FineTune) -> dict:
    """A model's lineage, both ways: `ancestors` (the models it descends from, the oldest first; the base model is
    each one's `base_model`), `descendants` ([(depth, model)] in tree order: the models trained from it, from those,
    and so on), `runs` (GRPO runs that start from it and have not registered a model yet), `heldout` and `benchmarks`
    (its evaluations, newest first), `truncated` when a side reached LINEAGE_LIMIT."""
    ancestors, current = [], finetune
    while current.parent_id and len(ancestors) < LINEAGE_LIMIT:
        current = FineTune.objects.select_related("dataset", "version", "job", "grpo_run").get(pk=current.parent_id)
        ancestors.insert(0, current)
    by_parent: dict[int, list[FineTune]] = {}
    frontier, seen = [finetune.pk], 0
    while frontier and seen < LINEAGE_LIMIT:
        children = list(FineTune.objects.filter(owner=finetune.owner, parent_id__in=frontier)
                        .select_related("dataset", "version", "job", "grpo_run").order_by("created_at")[:LINEAGE_LIMIT])
        seen += len(children)
        for child in children:
            by_parent.setdefault(child.parent_id, []).append(child)
        frontier = [child.pk for child in children]
    descendants = []

    def walk(parent_pk: int, depth: int):
        for child in by_parent.get(parent_pk, []):
            descendants.append((depth, child))
            walk(child.pk, depth + 1)

    walk(finetune.pk, 1)
    runs = (GrpoRun.objects.filter(owner=finetune.owner, base_model=f"{FINETUNE_PREFIX}{finetune.code}", model=None)
            .select_related("job").order_by("created_at"))
    return {"ancestors": ancestors, "descendants": descendants, "runs": runs,
            "heldout": finetune.heldout_evaluations.select_related("job").order_by("-created_at"),
            "benchmarks": finetune.benchmark_runs.select_related("job").order_by("-created_at"),
            "truncated": len(ancestors) >= LINEAGE_LIMIT or seen >= LINEAGE_LIMIT}


def example_lineage(*, user, version_code, position) -> dict:
    """One example of a frozen version and what came of it: `example`, `version`, `models` (the user's models
    trained or evaluated on its version, oldest first: trained on it when it is a training example) and `answers`
    (every held-out evaluation's answers to it, newest first). 404 for anyone else's version."""
    version = dataset_version_get_for_user(user=user, code=version_code)
    try:
        example = version.examples.select_related("document", "chunk__document").get(position=position)
    except VersionExample.DoesNotExist:
        raise Http404("No such example.")
    models = (FineTune.objects.filter(owner=user, version=version).select_related("job", "grpo_run", "parent")
              .order_by("created_at"))
    answers = (HeldoutItem.objects.filter(example=example, evaluation__owner=user)
               .select_related("evaluation__finetune", "evaluation__job").order_by("-evaluation__created_at"))
    return {"example": example, "version": version, "models": models, "answers": answers,
            "trained_on": example.split == VersionExample.Split.TRAIN}
