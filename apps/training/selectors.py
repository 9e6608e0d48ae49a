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


def finetune_base_ref(finetune: FineTune):
    """The base model the fine-tune started from, as workers.inference.ModelRef. The tiny test model is built
    per fine-tune beside its outputs; other names resolve as every feature's do (apps.training.model_choices)."""
    from apps.training.model_choices import base_model_source
    from apps.training.services import finetune_output_dir
    from workers.inference import ModelRef
    from workers.tiny_model import TINY_MODEL_ID

    if finetune.base_model == TINY_MODEL_ID:
        return ModelRef(path=str(finetune_output_dir(finetune) / "base"))
    return ModelRef(path=base_model_source(finetune.base_model))


def finetune_model_ref(finetune: FineTune):
    """The tuned model as workers.inference.ModelRef: the base with the LoRA adapter, or the saved full model."""
    from apps.training.services import finetune_output_dir
    from workers.inference import ModelRef

    model_dir = str(finetune_output_dir(finetune) / "model")
    if finetune.method == FineTune.Method.FULL:
        return ModelRef(path=model_dir)
    return ModelRef(path=finetune_base_ref(finetune).path, adapter=model_dir)
