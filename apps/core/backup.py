"""Backups of a whole installation (`garage backup`, `garage restore`): one .tar.gz that holds the database and a
manifest of every stored file the database refers to, and, with --with-files, those files themselves.

Its members, in this order (restore reads the manifest first: it refuses an archive it cannot restore before reading
the rest, and knows the name, size and checksum of every member to come):
- manifest.json: the format and its version, when and on which database kind the backup was made, the migrations
  applied (restore refuses a backup of a newer schema), a value encrypted with the server's key (restore tells at
  once whether the secrets will open), and one entry per stored file: uploads (every FileField, area "media", under
  their storage names) and trained models' files (area "artifacts", paths under GARAGE_ARTIFACTS_DIR, declared by
  each app's `backups.py`), with size and sha256 when the file is on this machine.
- database.jsonl: every row, in Django's JSON lines serialization with natural foreign keys, which loads into SQLite
  and PostgreSQL alike. Content types and permissions are left out (`migrate` makes them on the restoring side, and
  rows name them by natural key), and so are sessions, the admin's log and sign-in lockouts, which are short-lived.
- media/<name> and artifacts/<path>: the local files, with --with-files.

Secrets (provider keys, Hub tokens) stay encrypted as stored: only the keys of the server that made the backup
(SECRET_KEY, or GARAGE_ENCRYPTION_KEY when set) open them after a restore."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.exceptions import FieldDoesNotExist, SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import CommandError, call_command
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError, connection, models, transaction
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils.module_loading import autodiscover_modules

from apps.core.crypto import DecryptionError, decrypt, encrypt
from workers.common.errors import ReadableError

FORMAT = "gemma-garage-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "database.jsonl"
MEDIA, ARTIFACTS = "media", "artifacts"
# What restore has to go on before it has read anything else: a manifest lists paths, a few hundred bytes each, so
# this holds hundreds of thousands of files, and a larger one is not a manifest this release wrote.
MANIFEST_MAX_BYTES = 64 * 1024 * 1024
# Left out of the dump (see the module's docstring); restore does not count their rows either when it decides whether
# a database is empty, as `migrate` fills the first two.
EXCLUDED_APPS = ("contenttypes", "sessions", "axes")
EXCLUDED_MODELS = ("auth.permission", "admin.logentry")
# Encrypted into every manifest with the server's key: a restore that cannot decrypt it will not open the secrets.
KEY_CHECK_TEXT = "gemma-garage backup key check"
# Model weights hardly compress, and zlib is slow at any level on them; level 1 keeps the database dump within a few
# percent of the best ratio at twice the speed of the default.
COMPRESS_LEVEL = 1
CHUNK = 1024 * 1024
SHOWN = 20  # paths listed in a message before "and N more"


# ------------------------------------------------------------------------------------------- declared artifacts

@dataclass(frozen=True)
class ArtifactRef:
    """A path under the artifacts folder that a row refers to, and what refers to it. A file, or a folder whose every
    file is kept; `folder` marks a folder that may not exist yet (a model whose training has not started), which is
    then left out quietly instead of being reported missing."""

    path: str
    ref: str
    folder: bool = False


_ARTIFACT_SOURCES: list[Callable[[], Iterable[ArtifactRef]]] = []


def artifact_refs_declare(source: Callable[[], Iterable[ArtifactRef]]):
    """Declare, in an app's `backups.py` (found by autodiscovery when a backup starts), a function that yields an
    ArtifactRef for every file or folder of the artifacts folder that the app's rows refer to."""
    if source not in _ARTIFACT_SOURCES:
        _ARTIFACT_SOURCES.append(source)
    return source


# ------------------------------------------------------------------------------------------------------ helpers

def _relative_ok(path) -> bool:
    """Whether a stored path stays below the folder it is relative to, whatever it is joined to."""
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        return False
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and all(p not in ("", ".", "..") for p in parts)


def _sha256(handle) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    for unit in ("KB", "MB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:,.1f} GB"


def _kept(model) -> bool:
    meta = model._meta
    return not meta.proxy and meta.app_label not in EXCLUDED_APPS and meta.label_lower not in EXCLUDED_MODELS


def backed_up_models() -> list:
    """The models whose rows a backup holds, in an order that loads: a model after those it names by natural key."""
    by_app: dict = {}
    for model in apps.get_models():
        if _kept(model):
            by_app.setdefault(apps.get_app_config(model._meta.app_label), []).append(model)
    return serializers.sort_dependencies(by_app.items(), allow_cycles=True)


def _media_local() -> bool:
    # Every FileField of this project keeps its file in the default storage: the media folder, or the S3 bucket.
    return isinstance(default_storage, FileSystemStorage)


def _artifacts_root() -> Path:
    return Path(settings.GARAGE_ARTIFACTS_DIR).resolve()


# ------------------------------------------------------------------------------------------------------- backup

@dataclass
class BackupReport:
    path: Path
    bytes: int
    vendor: str
    rows: int
    files: list[dict]
    with_files: bool
    warnings: list[str] = field(default_factory=list)


@contextmanager
def _read_snapshot() -> Iterator[None]:
    """One consistent view of the database for the whole dump, while the web and the workers go on writing."""
    if connection.in_atomic_block:
        # Called inside a transaction of the caller's (a test's, a script's): its view is the one there is.
        yield
    elif connection.vendor == "sqlite":
        # atomic() would BEGIN IMMEDIATE (settings: transaction_mode), holding the write lock for the whole dump; a
        # deferred transaction reads one snapshot of the write-ahead log and blocks nobody.
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("COMMIT")
    else:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield


def _dump(path: Path) -> int:
    """Write every kept row to `path` as JSON lines; the number of rows."""
    rows = 0

    def objects():
        nonlocal rows
        for model in backed_up_models():
            for row in model._base_manager.order_by(model._meta.pk.name).iterator():
                rows += 1
                yield row

    with path.open("w", encoding="utf-8") as handle:
        serializers.serialize("jsonl", objects(), stream=handle, use_natural_foreign_keys=True)
    return rows


def _media_refs(warnings: list[str]) -> dict[str, str]:
    """Storage name -> what refers to it, for every FileField value in the database."""
    refs: dict[str, str] = {}
    for model in apps.get_models():
        for file_field in model._meta.concrete_fields:
            if not isinstance(file_field, models.FileField):
                continue
            values = model._base_manager.exclude(**{file_field.attname: ""}).exclude(**{f"{file_field.attname}__isnull": True})
            for pk, name in values.values_list("pk", file_field.attname).iterator():
                ref = f"{model._meta.label_lower} {pk} {file_field.name}"
                if not _relative_ok(name):
                    warnings.append(f"{ref} refers to '{name}', which is not a path inside the media folder: left out.")
                else:
                    refs.setdefault(name, ref)
    return refs


def _artifact_refs() -> list[ArtifactRef]:
    autodiscover_modules("backups")
    return [ref for source in _ARTIFACT_SOURCES for ref in source()]


def _media_entries(refs: dict[str, str], warnings: list[str]) -> list[dict]:
    entries = []
    for name, ref in sorted(refs.items()):
        entry = {"area": MEDIA, "path": name, "ref": ref, "state": "remote", "size": None, "sha256": None}
        if _media_local():
            try:
                path = Path(default_storage.path(name))
            except SuspiciousFileOperation:
                warnings.append(f"{ref} refers to '{name}', outside the media folder: left out.")
                continue
            entry.update(_local_state(path))
        entries.append(entry)
    return entries


def _local_state(path: Path) -> dict:
    if not path.is_file() or path.is_symlink():
        return {"state": "missing"}
    with path.open("rb") as handle:
        size, digest = _sha256(handle)
    return {"state": "local", "size": size, "sha256": digest}


def _artifact_entries(refs: list[ArtifactRef], warnings: list[str]) -> list[dict]:
    root = _artifacts_root()
    # With a bucket for artifacts (settings.STORAGES["artifacts"]), a file this machine lacks may be kept there.
    absent = "remote" if ARTIFACTS in settings.STORAGES else "missing"
    entries: dict[str, dict] = {}
    for item in refs:
        if not _relative_ok(item.path):
            warnings.append(f"{item.ref} refers to '{item.path}', which is not a path inside the artifacts folder: left out.")
            continue
        path = root / item.path
        if path.exists() and root not in path.resolve().parents:
            warnings.append(f"{item.ref} refers to '{item.path}', which leads out of the artifacts folder: left out.")
            continue
        if path.is_dir():
            files = _folder_files(path, item.ref, warnings)
        elif path.is_file():
            files = [path]
        else:
            if not item.folder:
                entries.setdefault(item.path, {"area": ARTIFACTS, "path": item.path, "ref": item.ref, "state": absent,
                                               "size": None, "sha256": None})
            continue
        for file in files:
            relative = file.relative_to(root).as_posix()
            if relative not in entries:
                entries[relative] = {"area": ARTIFACTS, "path": relative, "ref": item.ref, **_local_state(file)}
    return [entries[key] for key in sorted(entries)]


def _folder_files(folder: Path, ref: str, warnings: list[str]) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(folder):  # links to folders are not followed
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_symlink():
                warnings.append(f"{path} ({ref}) is a symbolic link: left out.")
            elif path.is_file():
                files.append(path)
    return files


def _output_path(output: str | None) -> Path:
    name = f"garage-backup-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.tar.gz"
    if not output:
        folder = Path(settings.VAR_DIR) / "backups"
        folder.mkdir(exist_ok=True)
        return folder / name
    path = Path(output).expanduser()
    if path.is_dir():
        return path / name
    if path.exists():
        raise ReadableError(f"{path} already exists: give another name, or a folder to write the backup in.")
    if not path.parent.is_dir():
        raise ReadableError(f"There is no folder {path.parent} to write the backup in.")
    return path


class _HashingReader:
    """Reads a file for tarfile while hashing it, so that what goes into the archive is checked against the
    manifest, which was written before."""

    def __init__(self, handle):
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _add(tar: tarfile.TarFile, name: str, path: Path, size: int, sha256: str) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(datetime.now(timezone.utc).timestamp())
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size != size:
            raise ReadableError(f"{path} changed while the backup was being written (a job writing it?). Run the "
                                f"backup again when no training is running.")
        reader = _HashingReader(handle)
        tar.addfile(info, reader)
    if reader.digest.hexdigest() != sha256:
        raise ReadableError(f"{path} changed while the backup was being written (a job writing it?). Run the backup "
                            f"again when no training is running.")


def backup_write(*, output: str | None = None, with_files: bool = False) -> BackupReport:
    """Write a backup archive (see the module's docstring) and return what it holds.

    Side effects: one .tar.gz, readable by its owner only (it holds password hashes and encrypted secrets), at
    `output` (a file name, or a folder to write in) or under VAR_DIR/backups; written under a temporary name and
    renamed, so a backup cut short never passes for one. Raises ReadableError when it cannot be written."""
    target = _output_path(output)
    warnings: list[str] = []
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".garage-backup-") as scratch:
            dump = Path(scratch) / DATABASE
            with _read_snapshot():
                applied = MigrationRecorder(connection).applied_migrations()
                rows = _dump(dump)
                media_refs, artifact_refs = _media_refs(warnings), _artifact_refs()
            # Files are read after the snapshot ends: hashing gigabytes of models must not hold a transaction open.
            files = _media_entries(media_refs, warnings) + _artifact_entries(artifact_refs, warnings)
            for entry in files:
                entry["included"] = with_files and entry["state"] == "local"
            with dump.open("rb") as handle:
                dump_size, dump_sha = _sha256(handle)
            migrations: dict[str, list[str]] = {}
            for app_label, name in sorted(applied):
                migrations.setdefault(app_label, []).append(name)
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "database": {"vendor": connection.vendor, "file": DATABASE, "rows": rows, "size": dump_size,
                                     "sha256": dump_sha},
                        "migrations": migrations, "media_storage": "local" if _media_local() else "s3",
                        "with_files": with_files, "key_check": encrypt(KEY_CHECK_TEXT), "files": files}
            manifest_path = Path(scratch) / MANIFEST
            manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
            with manifest_path.open("rb") as handle:
                manifest_size, manifest_sha = _sha256(handle)
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as raw, \
                    tarfile.open(fileobj=raw, mode="w:gz", compresslevel=COMPRESS_LEVEL) as tar:
                _add(tar, MANIFEST, manifest_path, manifest_size, manifest_sha)
                _add(tar, DATABASE, dump, dump_size, dump_sha)
                root = _artifacts_root()
                for entry in files:
                    if entry["included"]:
                        local = Path(default_storage.path(entry["path"])) if entry["area"] == MEDIA \
                            else root / entry["path"]
                        _add(tar, f"{entry['area']}/{entry['path']}", local, entry["size"], entry["sha256"])
        os.replace(partial, target)
    except OSError as exc:
        raise ReadableError(f"The backup could not be written to {target}: {exc.strerror or exc}.") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(path=target, bytes=target.stat().st_size, vendor=connection.vendor, rows=rows, files=files,
                        with_files=with_files, warnings=warnings)


# ------------------------------------------------------------------------------------------------------ restore

@dataclass
class RestoreReport:
    manifest: dict
    placed: int = 0  # files put back from the archive (checked against the manifest while unpacked)
    verified: int = 0  # files found in place on this machine with the manifest's checksum
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    missing_before: list[str] = field(default_factory=list)  # already missing when the backup was made
    remote: int = 0  # uploads and models kept in a bucket: listed, neither copied nor checked
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> bool:
        return bool(self.missing or self.changed or self.missing_before)


def _damaged(reason: str) -> ReadableError:
    return ReadableError(f"The backup's manifest is damaged: {reason}. It cannot be restored.")


def _manifest_check(manifest) -> None:
    """Refuse a manifest this release did not write, or from a newer one, and any path that could leave its folder."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ReadableError("This is not a Gemma Garage backup: its manifest.json does not say so.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _damaged("its format version is missing")
    if version > FORMAT_VERSION:
        raise ReadableError(f"This backup was written by a newer release of Gemma Garage (backup format {version}; "
                            f"this release reads format {FORMAT_VERSION}). Upgrade, then restore it.")
    database, migrations, files = manifest.get("database"), manifest.get("migrations"), manifest.get("files")
    if not isinstance(database, dict) or not _is_size(database.get("size")) or not _is_sha(database.get("sha256")) \
            or not _is_size(database.get("rows")):
        raise _damaged("its database entry is incomplete")
    if not isinstance(migrations, dict) or not all(
            isinstance(names, list) and all(isinstance(n, str) for n in names) for names in migrations.values()):
        raise _damaged("its list of migrations is not one")
    if not isinstance(files, list):
        raise _damaged("its list of files is not one")
    seen = set()
    for entry in files:
        if not isinstance(entry, dict) or entry.get("area") not in (MEDIA, ARTIFACTS) \
                or entry.get("state") not in ("local", "missing", "remote"):
            raise _damaged("a file entry has no area or state")
        if not _relative_ok(entry.get("path")):
            raise ReadableError(f"The backup's manifest lists the path {entry.get('path')!r}, which would leave its "
                                f"folder: refused.")
        if (entry["area"], entry["path"]) in seen:
            raise _damaged(f"it lists {entry['area']}/{entry['path']} twice")
        seen.add((entry["area"], entry["path"]))
        if entry["state"] == "local" and not (_is_size(entry.get("size")) and _is_sha(entry.get("sha256"))):
            raise _damaged(f"{entry['area']}/{entry['path']} has no size or checksum")
        if entry.get("included") and entry["state"] != "local":
            raise _damaged(f"{entry['area']}/{entry['path']} is said to be included but was not on the machine")


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_sha(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _schema_check(manifest: dict, report: RestoreReport) -> None:
    """Refuse a backup whose database has migrations this release lacks (a newer schema); note those it lacks."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    archived = {(app_label, name) for app_label, names in manifest["migrations"].items() for name in names}
    unknown = sorted(f"{app_label}.{name}" for app_label, name in archived - set(loader.disk_migrations))
    if unknown:
        raise ReadableError(f"This backup comes from a newer release of Gemma Garage: its database has migrations "
                            f"this release does not know ({_listed(unknown)}). Restore it with that release or a "
                            f"later one.")
    newer = sorted(f"{app_label}.{name}" for app_label, name in set(loader.graph.nodes) - archived)
    if newer:
        report.notes.append(f"This backup was made before {len(newer)} migration(s) of this release "
                            f"({_listed(newer)}): fields added since take their defaults.")


def _rows_present() -> list[str]:
    """The kept models that hold rows in this database (tables not yet made count as empty)."""
    tables = set(connection.introspection.table_names())
    return [model._meta.label for model in backed_up_models()
            if model._meta.db_table in tables and model._base_manager.exists()]


def _space_check(manifest: dict) -> None:
    included = [e for e in manifest["files"] if e.get("included")]
    # The database is unpacked once; each file once, and uploads a second time when saved into the storage.
    needed = manifest["database"]["size"] + sum(e["size"] for e in included) \
        + sum(e["size"] for e in included if e["area"] == MEDIA)
    free = shutil.disk_usage(settings.VAR_DIR).free
    if needed > free:
        raise ReadableError(f"Restoring this backup needs {size_text(needed)} of free space in {settings.VAR_DIR}, "
                            f"which has {size_text(free)}: refused.")


def _manifest_read(tar: tarfile.TarFile) -> dict:
    member = tar.next()
    if member is None or member.name != MANIFEST or not member.isreg():
        raise ReadableError("This is not a Gemma Garage backup: it does not start with manifest.json.")
    if member.size > MANIFEST_MAX_BYTES:
        raise ReadableError(f"The backup's manifest is {size_text(member.size)}, far more than a manifest holds: "
                            f"refused.")
    try:
        return json.loads(tar.extractfile(member).read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _damaged("it is not JSON") from None


def _members_extract(tar: tarfile.TarFile, manifest: dict, staging: Path) -> None:
    """Unpack every member after the manifest into `staging`, each checked before anything is written: a name the
    manifest lists (so nothing else, and nothing twice), a regular file (no link, device or folder) that the data
    filter accepts, the size the manifest gives; and its checksum checked while it is written."""
    expected = {DATABASE: (manifest["database"]["size"], manifest["database"]["sha256"])}
    expected.update({f"{e['area']}/{e['path']}": (e["size"], e["sha256"]) for e in manifest["files"] if e.get("included")})
    # next(), not iteration: iterating a TarFile starts again from the members already read (the manifest).
    while (member := tar.next()) is not None:
        try:
            tarfile.data_filter(member, str(staging))
        except tarfile.FilterError as exc:
            raise ReadableError(f"The backup holds a member that would be unpacked where it must not be ({exc}): "
                                f"refused.") from None
        if not member.isreg():
            raise ReadableError(f"The backup holds '{member.name}', which is not a plain file (a link, a device or a "
                                f"folder): refused.")
        if member.name not in expected:
            raise ReadableError(f"The backup holds '{member.name}', which its manifest does not list: refused.")
        size, sha256 = expected.pop(member.name)
        if member.size != size:
            raise ReadableError(f"'{member.name}' is {member.size:,} bytes in the backup but {size:,} in its "
                                f"manifest: refused.")
        target = staging / member.name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        source = tar.extractfile(member)
        with target.open("xb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ReadableError(f"'{member.name}' is damaged in the backup: its checksum differs from the manifest's.")
    if expected:
        raise ReadableError(f"The backup is incomplete: {len(expected)} member(s) its manifest lists are missing "
                            f"({_listed(sorted(expected))}).")


def _database_load(dump: Path, *, flush: bool) -> None:
    """Bring the schema up to date, then (in one transaction, so a failure leaves the database as it was) empty it
    when asked, and load the rows."""
    try:
        call_command("migrate", interactive=False, verbosity=0)
    except (CommandError, InconsistentMigrationHistory, DatabaseError) as exc:
        raise ReadableError(f"This database could not be migrated before the restore: {exc}") from exc
    try:
        with transaction.atomic():
            if flush:
                call_command("flush", interactive=False, verbosity=0)
            call_command("loaddata", str(dump), verbosity=0)
    except (DeserializationError, DatabaseError, FieldDoesNotExist, ValidationError) as exc:
        raise ReadableError(f"The backup's rows do not load into this database ({exc}). Nothing was changed. A backup "
                            f"of an older release restores with that release; upgrade afterwards.") from exc


def _files_place(manifest: dict, staging: Path, report: RestoreReport) -> None:
    root = _artifacts_root()
    for entry in manifest["files"]:
        if not entry.get("included"):
            continue
        staged = staging / entry["area"] / entry["path"]
        if entry["area"] == MEDIA:
            if default_storage.exists(entry["path"]):
                default_storage.delete(entry["path"])
            with staged.open("rb") as handle:
                saved = default_storage.save(entry["path"], File(handle, name=entry["path"]))
            if saved != entry["path"]:
                report.changed.append(f"{MEDIA}/{entry['path']} (saved as {saved})")
                continue
        else:
            target = root / entry["path"]
            folder = target.parent.resolve()  # a link on this machine must not carry the file out of the folder
            if folder != root and root not in folder.parents:
                report.missing.append(f"{ARTIFACTS}/{entry['path']} (its folder here leads out of the artifacts folder)")
                continue
            folder.mkdir(parents=True, exist_ok=True)
            shutil.move(staged, folder / target.name)
        report.placed += 1


def _files_verify(manifest: dict, report: RestoreReport) -> None:
    """Check every listed file the archive did not carry where this machine keeps it."""
    root = _artifacts_root()
    for entry in manifest["files"]:
        name = f"{entry['area']}/{entry['path']}"
        if entry.get("included"):
            continue
        if entry["state"] == "remote":
            report.remote += 1
            continue
        if entry["state"] == "missing":
            report.missing_before.append(name)
            continue
        try:
            if entry["area"] == MEDIA:
                with default_storage.open(entry["path"], "rb") as handle:
                    size, digest = _sha256(handle)
            else:
                path = root / entry["path"]
                if root not in path.resolve().parents:
                    raise FileNotFoundError(path)
                with path.open("rb") as handle:
                    size, digest = _sha256(handle)
        except (FileNotFoundError, IsADirectoryError, SuspiciousFileOperation):
            report.missing.append(name)
            continue
        if (size, digest) != (entry["size"], entry["sha256"]):
            report.changed.append(name)
        else:
            report.verified += 1


def backup_restore(*, archive: str, force: bool = False) -> RestoreReport:
    """Restore a backup archive into this database (migrated first when it needs it) and put its files back.

    Refuses, before changing anything: a file that is not a backup of this release or an older one, a hostile
    archive (paths out of their folder, links, devices, sizes that differ from the manifest or exceed the free
    space), a damaged member, and a database that holds rows unless `force`, which then empties it first (in the
    same transaction as the load). Side effects: the rows loaded; uploads saved into the media storage and models
    into the artifacts folder, replacing files of the same names. Raises ReadableError."""
    path = Path(archive).expanduser()
    if not path.is_file():
        raise ReadableError(f"No such backup: {archive}")
    staging = Path(settings.VAR_DIR) / f".restore-{uuid.uuid4().hex}"
    try:
        try:
            with tarfile.open(path, mode="r|gz") as tar:
                manifest = _manifest_read(tar)
                _manifest_check(manifest)
                report = RestoreReport(manifest=manifest)
                _schema_check(manifest, report)
                present = _rows_present()
                if present and not force:
                    raise ReadableError(f"This database is not empty (it holds rows of {_listed(present)}): a restore would "
                                        f"mix two installations. Restore into a new, empty database, or pass --force "
                                        f"to delete every row here first.")
                _space_check(manifest)
                staging.mkdir(mode=0o700)
                _members_extract(tar, manifest, staging)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ReadableError(f"{path.name} is not a readable .tar.gz backup, or it is cut short ({exc}).") from exc
        _database_load(staging / DATABASE, flush=bool(present))
        _files_place(manifest, staging, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _files_verify(manifest, report)
    try:
        if decrypt(manifest.get("key_check") or "") != KEY_CHECK_TEXT:
            raise DecryptionError
    except DecryptionError:
        report.warnings.append("The secrets in this backup (saved provider keys, Hugging Face tokens) were encrypted "
                               "with other keys than this server's: set SECRET_KEY (or GARAGE_ENCRYPTION_KEY) to the "
                               "values of the server that made the backup, or their owners will have to enter them "
                               "again.")
    return report
