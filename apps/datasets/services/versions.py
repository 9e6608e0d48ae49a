"""Writes of the datasets app: freezing a dataset's pairs into a numbered version."""
import hashlib
import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from apps.datasets.models import Dataset, DatasetVersion, VersionExample


def heldout_positions(questions: list[str], ratio: float) -> set[int]:
    """Which examples to hold out for evaluation: about the `ratio` share (at least one from five examples up)
    whose question hashes lowest. Hashing the question, not drawing at random, keeps a question on the same side
    in every version of a dataset, and repeated questions together on one side, so that a model is never
    evaluated on what it was trained on."""
    if ratio <= 0 or len(questions) < 5:
        return set()
    digests = [hashlib.sha256(" ".join(q.lower().split()).encode()).hexdigest() for q in questions]
    count = max(1, min(len(questions) - 1, math.floor(len(questions) * ratio)))
    chosen, held = set(), set()
    for digest in sorted(set(digests)):
        if len(held) >= count:
            break
        positions = {i for i, d in enumerate(digests) if d == digest}
        if len(held) + len(positions) >= len(questions):
            break  # keep something to train on
        chosen.add(digest)
        held |= positions
    return held


def dataset_version_freeze(*, dataset: Dataset, note: str = "", heldout_ratio: float | None = None) -> DatasetVersion:
    """Copy the dataset's current pairs (not those curation set aside) into a new numbered version that never
    changes afterwards, holding out a share of them (GARAGE_HELDOUT_RATIO by default) for evaluation.

    Side effects: creates a DatasetVersion and its VersionExamples. Raises ValidationError when there are no pairs."""
    pairs = list(dataset.pairs.included().select_related("chunk").order_by("id"))
    if not pairs:
        raise ValidationError("This dataset has no question-answer pairs yet. Generate or add some first.")
    ratio = settings.GARAGE_HELDOUT_RATIO if heldout_ratio is None else heldout_ratio
    if not 0 <= ratio <= 0.5:
        raise ValidationError("The held-out share must be between 0 and 0.5.")
    heldout = heldout_positions([pair.question for pair in pairs], ratio)
    with transaction.atomic():
        # Lock the dataset row so two freezes cannot take the same number.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(owner=dataset.owner, dataset=dataset, number=number,
                                                note=note[:300], example_count=len(pairs), heldout_count=len(heldout))
        VersionExample.objects.bulk_create(
            VersionExample(version=version, position=position, system=pair.system, question=pair.question,
                           split=VersionExample.Split.HELDOUT if position in heldout else VersionExample.Split.TRAIN,
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
