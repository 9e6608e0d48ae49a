"""What the tuned models' rows keep in the artifacts folder, for backups (apps.core.backup)."""
from pathlib import Path

from django.conf import settings

from apps.core.backup import ArtifactRef, artifact_refs_declare
from apps.training.models import FineTune
from apps.training.services import finetune_output_dir


@artifact_refs_declare
def finetune_artifact_refs():
    """A tuned model's folder (its adapter or model, the model it started from, its exports), and every path its row
    names besides: the training zip, the exports, the folder its adapter applies to (a GRPO warm-up's model)."""
    root = Path(settings.GARAGE_ARTIFACTS_DIR)
    for finetune in FineTune.objects.order_by("pk").iterator():
        ref = f"tuned model {finetune.code}"
        yield ArtifactRef(path=finetune_output_dir(finetune).relative_to(root).as_posix(), ref=ref, folder=True)
        outputs = [output.get("path") for output in (finetune.outputs or {}).values() if isinstance(output, dict)]
        for path in (finetune.artifact, finetune.adapter_base, *outputs):
            if path:
                yield ArtifactRef(path=path, ref=ref)
