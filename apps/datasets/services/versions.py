"""Writes of the datasets app: freezing a dataset's pairs into a numbered version."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from apps.datasets.models import Dataset, DatasetVersion, VersionExample
from workers.common.splits import evaluation_splits


def dataset_version_freeze(*, dataset: Dataset, note: str = "", heldout_ratio: float | None = None) -> DatasetVersion:
    """Copy the dataset's current pairs (not those curation set aside) into a new numbered version that never
    changes afterwards, holding out unseen facts (GARAGE_HELDOUT_RATIO of the examples by default) and recall
    phrasings (GARAGE_RECALL_RATIO of the facts asked more than one way) for evaluation; see evaluation_splits.

    Side effects: creates a DatasetVersion and its VersionExamples. Raises ValidationError when there are no pairs."""
    pairs = list(dataset.pairs.included().select_related("chunk").order_by("id"))
    if not pairs:
        raise ValidationError("This dataset has no question-answer pairs yet. Generate or add some first.")
    ratio = settings.GARAGE_HELDOUT_RATIO if heldout_ratio is None else heldout_ratio
    if not 0 <= ratio <= 0.5:
        raise ValidationError("The held-out share must be between 0 and 0.5.")
    splits = evaluation_splits([(pair.question, pair.fact) for pair in pairs], unseen_ratio=ratio,
                               recall_ratio=settings.GARAGE_RECALL_RATIO)
    recall = sum(split == VersionExample.Split.RECALL for split in splits.values())
    with transaction.atomic():
        # Lock the dataset row so two freezes cannot take the same number.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(owner=dataset.owner, dataset=dataset, number=number,
                                                note=note[:300], example_count=len(pairs), heldout_count=len(splits),
                                                recall_count=recall)
        VersionExample.objects.bulk_create(
            VersionExample(version=version, position=position, system=pair.system, question=pair.question,
                           split=splits.get(position, VersionExample.Split.TRAIN), answer=pair.answer, fact=pair.fact, source=pair.source, chunk=pair.chunk,
                           document=pair.document or (pair.chunk.document if pair.chunk else None))
            for position, pair in enumerate(pairs)
        )
    return version


def dataset_version_update(*, version: DatasetVersion, note: str) -> DatasetVersion:
    """Change a version's note; its examples never change. Side effects: saves the DatasetVersion."""
    version.note = (note or "").strip()[:300]
    version.save(update_fields=["note"])
    return version
