"""The subjects of dataset jobs (apps.core.subjects): a dataset, and a document."""
from apps.core.subjects import JobSubject, job_subject_kind, job_subject_page
from apps.datasets.models import Dataset, Document


# After the model (60): a training's config names its dataset too. Before the document: an import names both.
@job_subject_kind("dataset", priority=70)
def dataset_subject(*, job, pk) -> JobSubject | None:
    dataset = Dataset.objects.filter(owner_id=job.owner_id, pk=pk).first()
    if dataset is None:
        return None
    return job_subject_page("the dataset", dataset.name, "datasets:detail", dataset.code)


@job_subject_kind("document", priority=80)
def document_subject(*, job, pk) -> JobSubject | None:
    document = Document.objects.filter(owner_id=job.owner_id, pk=pk).first()
    if document is None:
        return None
    return job_subject_page("the document", document.filename, "datasets:document", document.code)
