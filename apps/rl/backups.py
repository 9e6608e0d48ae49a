"""What GRPO runs keep in the artifacts folder, for backups (apps.core.backup)."""
from apps.core.backup import ArtifactRef, artifact_refs_declare
from apps.rl.models import GrpoRun


@artifact_refs_declare
def grpo_run_artifact_refs():
    """A run's folder (its checkpoints too, from which a run that stopped resumes), and the zip and merged model its
    row names.
    The model a finished run registered is a tuned model in the same folder (apps.training.backups)."""
    for run in GrpoRun.objects.order_by("pk").iterator():
        ref = f"GRPO run {run.code}"
        yield ArtifactRef(path=run.folder, ref=ref, folder=True)
        for path in (run.artifact, (run.metrics or {}).get("merged")):
            if path:
                yield ArtifactRef(path=path, ref=ref)
