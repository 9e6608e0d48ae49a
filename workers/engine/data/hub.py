"""Records of a Hugging Face dataset, for imports: streamed with `datasets`, which brings numpy and pyarrow (the
worker's business, never the web process's)."""
from __future__ import annotations

import itertools

from workers.common.errors import ReadableError
from workers.common.records import hub_dataset_id_check, hub_offline


def load_hub_records(dataset_id: str, *, split: str = "train", config: str | None = None, limit: int = 10_000,
                     token: str | None = None, timeout: float = 10.0) -> list[dict]:
    """Up to `limit` records of a Hugging Face dataset, streamed so that only what is needed is downloaded.

    The Hub is asked about the dataset first with a short timeout, so an offline machine, a wrong id or a private
    dataset ends at once in a ReadableError instead of a long wait inside `datasets.load_dataset`."""
    dataset_id = hub_dataset_id_check(dataset_id)
    if hub_offline():
        raise ReadableError("This server is set to work offline (HF_HUB_OFFLINE), so datasets cannot be fetched "
                            "from the Hugging Face Hub. Download the data elsewhere and import the file instead.")
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    try:
        HfApi(token=token or None).dataset_info(dataset_id, timeout=timeout)
    except hub_errors.GatedRepoError:
        raise ReadableError(f"The dataset '{dataset_id}' is gated: accept its terms on the Hub and connect an account that has.")
    except hub_errors.RepositoryNotFoundError:
        raise ReadableError(f"No dataset '{dataset_id}' on the Hugging Face Hub (or it is private).")
    except hub_errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise ReadableError(f"The Hugging Face Hub refused to describe '{dataset_id}' (HTTP {status or 'error'}).")
    except Exception as exc:  # the HTTP client's connection and timeout errors, whichever client the Hub uses
        raise ReadableError(f"Could not reach the Hugging Face Hub ({type(exc).__name__}); this server may be offline. "
                            "Download the data elsewhere and import the file instead.")
    try:
        from datasets import load_dataset

        stream = load_dataset(dataset_id, config, split=split, streaming=True, token=token or None)
        return [dict(row) for row in itertools.islice(stream, limit)]
    except ValueError as exc:
        # load_dataset answers an unknown split or config with a ValueError naming the available ones.
        raise ReadableError(f"'{dataset_id}' could not be opened: {str(exc)[:300]}")
    except Exception as exc:
        raise ReadableError(f"'{dataset_id}' could not be loaded from the Hub ({type(exc).__name__}).")
