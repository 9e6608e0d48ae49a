"""Writes of the datasets app, one module per concern; import them from here."""
from apps.datasets.services.documents import (  # noqa: F401
    DatasetInUse,
    clean_filename,
    dataset_create,
    dataset_delete,
    document_extract_again,
    document_upload,
    extract_limits,
    local_path,
)
from apps.datasets.services.generation import qa_generate_options, qa_generate_start, qa_pair_delete  # noqa: F401
from apps.datasets.services.versions import dataset_version_freeze, dataset_version_update  # noqa: F401
from apps.datasets.services.curation import (  # noqa: F401
    curate_options,
    dataset_curate_start,
    dataset_import_file_start,
    dataset_import_hub_start,
    qa_pair_create,
    qa_pair_restore,
    qa_pair_update,
    qa_pairs_add_examples,
    qa_pairs_restore,
)
