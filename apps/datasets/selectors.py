from django.db.models import Count, QuerySet
from django.http import Http404

from apps.datasets.models import Dataset, DatasetVersion, Document, QAPair


def dataset_list_for_user(*, user) -> QuerySet[Dataset]:
    return Dataset.objects.filter(owner=user).annotate(
        document_count=Count("documents", distinct=True), pair_count=Count("pairs", distinct=True)
    ).order_by("-created_at")


def dataset_get_for_user(*, user, code) -> Dataset:
    """The user's dataset; 404 for anyone else."""
    try:
        return Dataset.objects.get(owner=user, code=code)
    except (Dataset.DoesNotExist, ValueError, TypeError):
        raise Http404("No such dataset.")


def document_get_for_user(*, user, code) -> Document:
    try:
        return Document.objects.select_related("dataset").get(owner=user, code=code)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404("No such document.")


def qa_pairs_for_dataset(*, dataset) -> QuerySet[QAPair]:
    return dataset.pairs.select_related("chunk__document").order_by("id")


def dataset_version_get_for_user(*, user, code) -> DatasetVersion:
    """The user's dataset version; 404 for anyone else."""
    try:
        return DatasetVersion.objects.select_related("dataset").get(owner=user, code=code)
    except (DatasetVersion.DoesNotExist, ValueError, TypeError):
        raise Http404("No such dataset version.")
