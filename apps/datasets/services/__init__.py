"""Writes of the datasets app, one module per concern; import them from here."""
from apps.datasets.services.documents import (  # noqa: F401
    clean_filename,
    dataset_create,
    document_extract,
    document_upload,
    local_path,
)
from apps.datasets.services.generation import qa_generate, qa_generate_start, qa_pair_delete  # noqa: F401
from apps.datasets.services.versions import dataset_version_freeze  # noqa: F401
