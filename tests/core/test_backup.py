"""`garage backup` and `garage restore`: round trips on SQLite and PostgreSQL (and from one to the other) in scratch
databases and var folders of their own, run as real commands; refusals of a database that holds rows and of hostile
or foreign archives; the report of files the database refers to that are not in place."""
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from apps.core.backup import FORMAT, FORMAT_VERSION
from garage.embedded import reachable
from tests.core.backup_probe import PROVIDER_KEY

ROOT = Path(__file__).resolve().parents[2]
SECRET = "backup-tests-secret-key"
POSTGRES = "postgres://postgres@127.0.0.1:5432"


def garage_env(var_dir: Path, database_url: str, secret: str = SECRET) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GARAGE_ENCRYPTION_KEY"}
    env.update(GARAGE_VAR_DIR=str(var_dir), DATABASE_URL=database_url, SECRET_KEY=secret, REDIS_URL=settings.REDIS_URL,
               DJANGO_SETTINGS_MODULE="garage.settings", PYTHONUNBUFFERED="1")
    return env


def garage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "garage.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def probe(env: dict, action: str = "inspect") -> dict:
    result = subprocess.run([sys.executable, "-m", "tests.core.backup_probe", action], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ scratch databases, migrated once

@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sqlite-template")
    result = garage(garage_env(folder, f"sqlite:///{folder / 'garage.sqlite3'}"), "migrate", "-v0")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "garage.sqlite3"


def sqlite_scratch(template: Path, var_dir: Path) -> str:
    """A migrated, empty SQLite database in `var_dir`, as its URL."""
    var_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, var_dir / "garage.sqlite3")
    return f"sqlite:///{var_dir / 'garage.sqlite3'}"


def postgres_admin(sql: str) -> None:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(sql)


@pytest.fixture(scope="module")
def postgres_template():
    if not reachable(POSTGRES):
        pytest.skip("No PostgreSQL at 127.0.0.1:5432.")
    name = f"garage_backup_template_{uuid.uuid4().hex[:12]}"
    postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        result = garage(garage_env(Path(settings.VAR_DIR), f"{POSTGRES}/{name}"), "migrate", "-v0")
        assert result.returncode == 0, result.stderr[-3000:]
        yield name
    finally:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_scratch(postgres_template):
    """Makes migrated, empty PostgreSQL databases (copies of the template), dropped after the test; gives URLs."""
    made = []

    def make() -> str:
        name = f"garage_backup_{uuid.uuid4().hex[:12]}"
        postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
        made.append(name)
        return f"{POSTGRES}/{name}"

    yield make
    for name in made:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def source(sqlite_template, tmp_path_factory):
    """A SQLite installation with one user's content (tests/core/backup_probe.py seed): (its env, what it holds)."""
    var_dir = tmp_path_factory.mktemp("source")
    env = garage_env(var_dir, sqlite_scratch(sqlite_template, var_dir))
    return env, probe(env, "seed")


@pytest.fixture(scope="module")
def archive(source) -> Path:
    """A backup of `source` with its files."""
    env, _ = source
    path = Path(env["GARAGE_VAR_DIR"]) / "full-backup.tar.gz"
    result = garage(env, "backup", "--with-files", "--output", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "17 rows (sqlite)" in result.stdout and "4 listed, 4 copied" in result.stdout
    return path


def test_it_seeds_what_the_round_trips_compare(source, archive):
    _, held = source
    assert held["counts"] == {"accounts.User": 1, "core.Job": 1, "core.JobEvent": 1, "datasets.Dataset": 1,
                              "datasets.Document": 1, "datasets.Chunk": 1, "datasets.QAPair": 4,
                              "datasets.DatasetVersion": 1, "datasets.VersionExample": 4,
                              "providers.ProviderCredential": 1, "training.FineTune": 1}
    assert sorted(name.split("/")[0] for name in held["files"]) == ["artifacts"] * 3 + ["media"]
    assert held["keys"] == {"vLLM on the lab box": PROVIDER_KEY}
    # Password hashes and encrypted secrets: the archive is its owner's alone.
    assert archive.stat().st_mode & 0o077 == 0


# ---------------------------------------------------------------------------------------------------- round trips

def test_it_restores_a_backup_with_its_files_on_sqlite(source, archive, sqlite_template, tmp_path):
    _, held = source
    env = garage_env(tmp_path, sqlite_scratch(sqlite_template, tmp_path))
    result = garage(env, "restore", str(archive))
    assert result.returncode == 0, result.stderr
    assert "17 rows" in result.stdout and "4 put back from the archive" in result.stdout
    assert "warning" not in result.stderr
    # Every row with every field, every file with its checksum, and the provider key opens with the same key.
    assert probe(env) == held


def test_it_round_trips_from_sqlite_to_postgresql_and_on_postgresql(source, archive, postgres_scratch, tmp_path):
    _, held = source
    first = garage_env(tmp_path / "first", postgres_scratch())
    result = garage(first, "restore", str(archive))
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "from-postgresql.tar.gz"
    result = garage(first, "backup", "--with-files", "--output", str(copy))
    assert result.returncode == 0 and "17 rows (postgresql)" in result.stdout, result.stderr
    second = garage_env(tmp_path / "second", postgres_scratch())
    result = garage(second, "restore", str(copy))
    assert result.returncode == 0, result.stderr
    assert "on postgresql" in result.stdout
    assert probe(second) == held


def test_it_refuses_a_database_that_holds_rows_unless_forced(source, archive, tmp_path):
    env, held = source
    var_dir = tmp_path / "copy"
    shutil.copytree(env["GARAGE_VAR_DIR"], var_dir)
    copy = garage_env(var_dir, f"sqlite:///{var_dir / 'garage.sqlite3'}")
    refused = garage(copy, "restore", str(archive))
    assert refused.returncode == 2
    assert "This database is not empty (it holds rows of" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    forced = garage(copy, "restore", "--force", str(archive))
    assert forced.returncode == 0, forced.stderr
    assert probe(copy) == held  # emptied, then the same rows loaded: nothing doubled


# ---------------------------------------------------------------------------------------------- refused archives

def manifest_of(**changes) -> dict:
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "created_at": "2025-01-01T00:00:00+00:00",
                "database": {"vendor": "sqlite", "file": "database.jsonl", "rows": 0, "size": 0,
                             "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
                "migrations": {}, "media_storage": "local", "with_files": True, "key_check": "", "files": []}
    manifest.update(changes)
    return manifest


def write_archive(path: Path, manifest: dict, members: list[tarfile.TarInfo | tuple[str, bytes]] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, content = member
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


SHA_OF_X = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"  # sha256(b"X")
HOSTILE = {
    "traversal": ([("database.jsonl", b""), ("../escaped.txt", b"X")], {}, "where it must not be"),
    # The data filter strips the leading slash; the name that is left is not one the manifest lists.
    "absolute path": ([("/tmp/garage-escaped.txt", b"X")], {}, "which its manifest does not list"),
    "symbolic link out": ([link("media/documents/passwd", "/etc/passwd")], {}, "where it must not be"),
    "symbolic link in": ([("database.jsonl", b""), link("media/documents/a.txt", "../../database.jsonl")], {},
                         "not a plain file"),
    "hard link": ([("database.jsonl", b""), link("media/documents/a.txt", "database.jsonl", tarfile.LNKTYPE)], {},
                  "not a plain file"),
    "member not listed": ([("database.jsonl", b""), ("media/documents/extra.txt", b"X")], {},
                          "which its manifest does not list"),
    "traversal in the manifest": ([], {"files": [{"area": "media", "path": "../../escaped.txt", "state": "local",
                                                  "size": 1, "sha256": SHA_OF_X, "included": True}]},
                                  "which would leave its folder"),
    "absurd size": ([], {"files": [{"area": "artifacts", "path": "huge.bin", "state": "local", "size": 10 ** 16,
                                    "sha256": SHA_OF_X, "included": True}]}, "of free space"),
    "size unlike the manifest's": ([("database.jsonl", b""), ("artifacts/a.bin", b"XX")],
                                   {"files": [{"area": "artifacts", "path": "a.bin", "state": "local", "size": 1,
                                               "sha256": SHA_OF_X, "included": True}]},
                                   "2 bytes in the backup but 1 in its manifest"),
    "damaged member": ([("database.jsonl", b""), ("artifacts/a.bin", b"Y")],
                       {"files": [{"area": "artifacts", "path": "a.bin", "state": "local", "size": 1,
                                   "sha256": SHA_OF_X, "included": True}]}, "is damaged in the backup"),
    "incomplete": ([("database.jsonl", b"")], {"files": [{"area": "artifacts", "path": "a.bin", "state": "local",
                                                          "size": 1, "sha256": SHA_OF_X, "included": True}]},
                   "The backup is incomplete"),
    "newer format": ([], {"format_version": FORMAT_VERSION + 1}, "written by a newer release"),
    "newer schema": ([], {"migrations": {"datasets": ["0001_initial", "0999_from_the_future"]}},
                     "datasets.0999_from_the_future"),
    "not a backup": ([], {"format": "something-else"}, "This is not a Gemma Garage backup"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", HOSTILE)
def test_it_refuses_a_hostile_or_foreign_archive_before_changing_anything(case, tmp_path):
    members, changes, message = HOSTILE[case]
    path = write_archive(tmp_path / "hostile.tar.gz", manifest_of(**changes), members)
    with pytest.raises(CommandError) as refused:
        call_command("restore", str(path))
    assert refused.value.returncode == 2
    assert message in str(refused.value)
    assert not (Path(settings.VAR_DIR).parent / "escaped.txt").exists()
    assert not Path("/tmp/garage-escaped.txt").exists()
    assert not list(Path(settings.VAR_DIR).glob(".restore-*"))  # the unpacked members are gone


@pytest.mark.django_db
def test_it_refuses_a_file_that_is_not_a_tar_gz(tmp_path):
    path = tmp_path / "notes.tar.gz"
    path.write_text("not an archive")
    with pytest.raises(CommandError, match="is not a readable .tar.gz backup"):
        call_command("restore", str(path))


# ------------------------------------------------------------------------------------------ files not in place

@pytest.mark.django_db
def test_it_reports_the_files_the_restored_database_lacks(source, tmp_path, settings):
    """A backup without its files, restored where those files are not (this test's own media and artifacts
    folders): the rows load, and the command names every missing file; the secrets need the other server's key."""
    env, held = source
    path = tmp_path / "without-files.tar.gz"
    result = garage(env, "backup", "--output", str(path))
    assert result.returncode == 0 and "4 listed with their checksums, not copied" in result.stdout, result.stderr
    settings.MEDIA_ROOT, settings.GARAGE_ARTIFACTS_DIR = tmp_path / "media", tmp_path / "artifacts"
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as reported:
        call_command("restore", str(path), stdout=out, stderr=err)
    message = str(reported.value)
    assert reported.value.returncode == 2
    assert message.startswith("The database was restored, but 4 of the files it refers to are not as the backup")
    assert sorted(line.split("missing: ")[1] for line in message.splitlines() if "  missing: " in line) \
        == sorted(held["files"])
    assert "17 rows" in out.getvalue()
    assert "encrypted with other keys than this server's" in err.getvalue()
    from apps.providers.models import ProviderCredential

    assert ProviderCredential.objects.get().name == "vLLM on the lab box"


def test_it_lists_a_file_missing_when_the_backup_is_made(alice, tmp_path, settings):
    from apps.datasets.models import Dataset, Document

    settings.MEDIA_ROOT = tmp_path / "media"
    dataset = Dataset.objects.create(owner=alice, name="Gone")
    Document.objects.create(owner=alice, dataset=dataset, file="documents/1/gone.md", filename="gone.md")
    err = io.StringIO()
    call_command("backup", "--with-files", "--output", str(tmp_path), stdout=io.StringIO(), stderr=err)
    assert "warning: media/documents/1/gone.md (datasets.document" in err.getvalue()
    (archive,) = tmp_path.glob("garage-backup-*.tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        assert tar.getnames() == ["manifest.json", "database.jsonl"]
        manifest = json.load(tar.extractfile("manifest.json"))
    assert [(f["path"], f["state"], f["included"]) for f in manifest["files"]] == [("documents/1/gone.md", "missing", False)]
    assert manifest["migrations"]["datasets"][0] == "0001_initial"
