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

from apps.rl.models import GrpoRun
from apps.training.services import artifact_resolve
from workers.common.errors import ReadableError
from workers.common.exports import CARD, EXPORTS
from workers.common.training import CHECKPOINT_WHOLE, CHECKPOINTS, RESUME_STATE, checkpoint_step

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
    beside it, `bases/` the model its adapter applies to when that lives beside it (base/), `checkpoints/` the
    resumable states of a training under way, `cards/` the model card, `outputs/merged/` and `outputs/gguf/` the
    exports."""
    parts = _relative_parts(relative)
    if parts[0] == GrpoRun.FOLDERS:
        return "/".join(parts)
    if len(parts) > 1 and parts[1] == CHECKPOINTS:
        kind = "checkpoints"
    elif len(parts) > 2 and parts[1] == EXPORTS:
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


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def artifact_upload(*, path: Path, changed_only: bool = False) -> None:
    """Copy a finished file, or every file of a finished folder, from the local artifacts folder into the shared
    storage, each under artifact_key of its relative path (replacing what was there; with `changed_only`, only the
    files the bucket lacks or holds at another size). Nothing happens without a bucket. Called by the worker after
    writing, before it records the file, so that a recorded file is in the bucket. Raises ReadableError for a path
    outside the artifacts folder."""
    storage = artifacts_storage()
    if storage is None:
        return
    for file in _files(Path(path)):
        key = artifact_key(_relative_to_root(file))
        if changed_only and _stored_size(storage, key) == file.stat().st_size:
            continue
        with file.open("rb") as handle:
            storage.save(key, File(handle))


def _stored_size(storage: Storage, key: str) -> int | None:
    try:
        return storage.size(key)
    except FileNotFoundError:
        return None


def artifact_checkpoint_upload(*, folder: Path) -> None:
    """Copy a checkpoint a training has just saved (`<run>/checkpoints/checkpoint-<step>/`) into the shared storage,
    with what a resumed run reads beside it (RESUME_STATE, uploaded again only where it changed), then remove the
    run's older checkpoints from the storage: a worker on another machine resumes from the newest whole one
    (artifact_checkpoint_fetch). Its marker file goes last, so that a checkpoint cut short by a dying worker is never
    taken for whole. Nothing happens without a bucket. Called by the worker before it reports the checkpoint, so
    that the reaper re-queues a training only once its checkpoint can be had from anywhere."""
    storage = artifacts_storage()
    if storage is None:
        return
    folder = Path(folder)
    run = folder.parent.parent
    for name in RESUME_STATE:
        if (run / name).exists():
            artifact_upload(path=run / name, changed_only=True)
    mark = folder / CHECKPOINT_WHOLE
    for file in _files(folder):
        if file != mark:
            artifact_upload(path=file)
    artifact_upload(path=mark)
    checkpoints_key = artifact_key(_relative_to_root(folder.parent))
    for name in storage.listdir(checkpoints_key)[0]:
        step = checkpoint_step(name)
        if step is not None and name != folder.name:
            for stored in _stored_files(storage, f"{checkpoints_key}/{name}"):
                storage.delete(f"{checkpoints_key}/{name}/{stored}")


def artifact_checkpoint_fetch(*, run: Path) -> int | None:
    """Fetch a run's newest whole checkpoint from the shared storage into its local folder (`run`), with what a
    resumed run reads beside it (RESUME_STATE) where this machine lacks it, when the storage holds a newer one than
    this machine: the training then resumes from it as from its own. Returns the step fetched, or None when there
    was nothing newer (always without a bucket)."""
    storage = artifacts_storage()
    if storage is None:
        return None
    run = Path(run)
    relative = _relative_to_root(run)
    checkpoints_key = artifact_key(f"{relative}/{CHECKPOINTS}")
    stored = [step for name in storage.listdir(checkpoints_key)[0]
              if (step := checkpoint_step(name)) is not None
              and storage.exists(f"{checkpoints_key}/{name}/{CHECKPOINT_WHOLE}")]
    local = [step for path in (run / CHECKPOINTS).glob("checkpoint-*")
             if (step := checkpoint_step(path.name)) is not None and (path / CHECKPOINT_WHOLE).is_file()]
    if not stored or max(stored) <= max(local, default=-1):
        return None
    for name in RESUME_STATE:
        if not (run / name).exists() and artifact_fetch(relative=f"{relative}/{name}") is None:
            artifact_folder_fetch(relative=f"{relative}/{name}")
    step = max(stored)
    # A local folder of that step without its marker was cut short here: the bucket's whole copy replaces it.
    shutil.rmtree(run / CHECKPOINTS / f"checkpoint-{step}", ignore_errors=True)
    artifact_folder_fetch(relative=f"{relative}/{CHECKPOINTS}/checkpoint-{step}")
    return step


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
