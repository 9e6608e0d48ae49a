"""Writes of the datasets app: freezing a dataset's pairs into a numbered version."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from apps.datasets.models import Dataset, DatasetVersion, VersionExample


def dataset_version_freeze(*, dataset: Dataset, note: str = "") -> DatasetVersion:
    """Copy the dataset's current pairs (not those curation set aside) into a new numbered version that never
    changes afterwards.

    Side effects: creates a DatasetVersion and its VersionExamples. Raises ValidationError when there are no pairs."""
    pairs = list(dataset.pairs.included().select_related("chunk").order_by("id"))
    if not pairs:
        raise ValidationError("This dataset has no question-answer pairs yet. Generate or add some first.")
    with transaction.atomic():
        # Lock the dataset row so two freezes cannot take the same number.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(owner=dataset.owner, dataset=dataset, number=number,
                                                note=note[:300], example_count=len(pairs))
        VersionExample.objects.bulk_create(
            VersionExample(version=version, position=position, system=pair.system, question=pair.question,
                           answer=pair.answer, source=pair.source, chunk=pair.chunk,
                           document=pair.document or (pair.chunk.document if pair.chunk else None))
            for position, pair in enumerate(pairs)
        )
    return version


def dataset_version_update(*, version: DatasetVersion, note: str) -> DatasetVersion:
    """Change a version's note; its examples never change. Side effects: saves the DatasetVersion."""
    version.note = (note or "").strip()[:300]
    version.save(update_fields=["note"])
    return version
