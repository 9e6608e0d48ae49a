"""Where trained models and their outputs are kept: every machine's local artifacts folder (GARAGE_ARTIFACTS_DIR),
and, when S3_BUCKET is set, the bucket's `artifacts` storage (settings.STORAGES["artifacts"]), which all machines share.

Without a bucket nothing leaves the local folder: the worker writes it and the web serves it from there, as on one
machine. With a bucket the worker uploads each finished file after writing it (artifact_upload), a worker that lacks
one fetches it into its local folder (artifact_fetch, artifact_folder_fetch: a model trained on another machine), and
the web never reads its own disk: it asks the bucket what exists (artifact_size, artifact_read_text) and sends the
owner to a short-lived signed address to download (artifact_download_response).

Every file is named by its path relative to the artifacts folder, as FineTune.artifact and FineTune.outputs record
it; in the bucket it goes under a prefix that says what it is (artifact_key). Nothing here loads torch: the web
imports it."""
from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

from apps.training.services import artifact_resolve
from workers.common.errors import ReadableError
from workers.common.exports import CARD, EXPORTS

STORAGE_ALIAS = "artifacts"


def artifacts_storage() -> Storage | None:
    """The shared storage of artifacts, or None when they stay in the local folder. Read from settings at each call,
    so that a changed STORAGES (a test's bucket) takes effect."""
    return storages[STORAGE_ALIAS] if STORAGE_ALIAS in settings.STORAGES else None


def _relative_parts(relative: str) -> tuple[str, ...]:
    """The parts of a stored relative path; ReadableError for one that could leave the artifacts folder."""
    path = PurePosixPath(str(relative or ""))
    if not path.parts or path.is_absolute() or any(part in ("", ".", "..") for part in path.parts):
        raise ReadableError(f"'{relative}' is not a path inside the artifacts folder.")
    return path.parts


def artifact_key(relative: str) -> str:
    """The name in the bucket (below the storage's `artifacts/` location) of a file of the artifacts folder: the
    relative path under a prefix for its kind, so that a bucket's lifecycle rules and a person browsing it can tell
    them apart. `grpo/` keeps a GRPO run's folder whole (its adapter, warm-up model, merged model, card); for a
    fine-tune's folder `<code>/`: `adapters/` the training zip (a full fine-tune's model zip too) and the folders
    beside it, `bases/` the model its adapter applies to when that lives beside it (base/), `cards/` the model card,
    `outputs/merged/` and `outputs/gguf/` the exports."""
    parts = _relative_parts(relative)
    if parts[0] == "grpo":
        return "/".join(parts)
    if len(parts) > 2 and parts[1] == EXPORTS:
        name = parts[2]
        kind = ("cards" if name == CARD else "outputs/merged" if name.startswith("merged")
                else "outputs/gguf" if name.startswith("gguf") else "outputs")
    elif len(parts) > 1 and parts[1] == "base":
        kind = "bases"
    else:
        kind = "adapters"
    return f"{kind}/{'/'.join(parts)}"


def _relative_to_root(path: Path) -> str:
    root = Path(settings.GARAGE_ARTIFACTS_DIR).resolve()
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        raise ReadableError(f"'{path}' is not inside the artifacts folder.") from None


def artifact_upload(*, path: Path) -> None:
    """Copy a finished file, or every file of a finished folder, from the local artifacts folder into the shared
    storage, each under artifact_key of its relative path (replacing what was there). Nothing happens without a
    bucket. Called by the worker after writing, before it records the file, so that a recorded file is in the bucket.
    Raises ReadableError for a path outside the artifacts folder."""
    storage = artifacts_storage()
    if storage is None:
        return
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            storage.save(artifact_key(_relative_to_root(file)), File(handle))


def _download(storage: Storage, key: str, target: Path) -> None:
    # Written beside the target and renamed, so that a download cut short never passes for the file.
    partial = target.with_name(f"{target.name}.partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    with storage.open(key, "rb") as source, partial.open("wb") as out:
        shutil.copyfileobj(source, out, length=8 * 1024 * 1024)
    partial.replace(target)


def artifact_fetch(*, relative: str) -> Path | None:
    """The local path of a stored file, downloaded from the shared storage into the local artifacts folder when this
    machine lacks it (a worker using what another one made). None when it is neither here nor in the bucket."""
    local = artifact_resolve(relative=relative)
    storage = artifacts_storage()
    if local is not None or storage is None:
        return local
    key = artifact_key(relative)
    if not storage.exists(key):
        return None
    target = Path(settings.GARAGE_ARTIFACTS_DIR) / Path(*_relative_parts(relative))
    _download(storage, key, target)
    return target


def artifact_folder_fetch(*, relative: str) -> Path | None:
    """The local path of a stored folder, its files downloaded from the shared storage when this machine lacks the
    folder. None when it is neither here nor in the bucket."""
    target = Path(settings.GARAGE_ARTIFACTS_DIR) / Path(*_relative_parts(relative))
    storage = artifacts_storage()
    if target.is_dir() or storage is None:
        return target if target.is_dir() else None
    names = _stored_files(storage, artifact_key(relative))
    if not names:
        return None
    # Filled in a side folder and renamed, so that a half-fetched model is never loaded.
    partial = target.with_name(f"{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for name in names:
        _download(storage, f"{artifact_key(relative)}/{name}", partial / name)
    partial.rename(target)
    return target


def _stored_files(storage: Storage, key: str) -> list[str]:
    """Every file below `key/` in the storage, as paths relative to it."""
    directories, files = storage.listdir(key)
    return [*files, *(f"{directory}/{name}" for directory in directories
                      for name in _stored_files(storage, f"{key}/{directory}"))]


def artifact_size(*, relative: str) -> int | None:
    """The size in bytes of a stored file where the web finds it (the bucket when there is one, else the local
    folder), or None when it does not exist."""
    storage = artifacts_storage()
    if storage is None:
        local = artifact_resolve(relative=relative) if relative else None
        return local.stat().st_size if local is not None else None
    try:
        return storage.size(artifact_key(relative)) if relative else None
    except (FileNotFoundError, ReadableError):
        return None


def artifact_read_text(*, relative: str) -> str | None:
    """A small stored text file (the model card) where the web finds it, or None when it does not exist."""
    storage = artifacts_storage()
    if storage is None:
        local = artifact_resolve(relative=relative) if relative else None
        return local.read_text(encoding="utf-8", errors="replace") if local is not None else None
    if artifact_size(relative=relative) is None:
        return None
    with storage.open(artifact_key(relative), "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def artifact_download_response(*, relative: str, filename: str, missing: str) -> HttpResponse:
    """The download of a stored file, for its owner (the caller has checked ownership): the file itself from the
    local folder, or, with a bucket, a redirect to a signed address that expires after
    GARAGE_ARTIFACT_URL_SECONDS and names the file `filename`. Http404 with `missing` when it does not exist."""
    storage = artifacts_storage()
    if storage is None:
        path = artifact_resolve(relative=relative) if relative else None
        if path is None:
            raise Http404(missing)
        return FileResponse(path.open("rb"), as_attachment=True, filename=filename)
    if artifact_size(relative=relative) is None:
        raise Http404(missing)
    url = storage.url(artifact_key(relative), expire=settings.GARAGE_ARTIFACT_URL_SECONDS,
                      parameters={"ResponseContentDisposition": content_disposition_header(True, filename)})
    return HttpResponseRedirect(url)
