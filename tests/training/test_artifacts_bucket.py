"""Every file of a tuned model in one bucket (apps.training.artifacts), against a real S3-compatible server (moto's):
the worker uploads what it records, the web serves downloads from the bucket through short-lived signed addresses
without reading any local disk, and a worker on another machine fetches what it needs from the bucket."""
import shutil
import zipfile
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from apps.core.models import Job
from apps.hub.pushes import hub_push_start
from apps.hub.selectors import hub_push_whats
from apps.training.artifacts import artifact_checkpoint_fetch, artifact_key
from apps.training.exports import finetune_export_start, finetune_file_stem
from apps.training.services import finetune_create
from tests.evaluation.test_heldout import facts_version, trained_finetune
from tests.fixtures.jobs import run_job
from tests.fixtures.s3 import BUCKET, s3_client, s3_empty, s3_keys, s3_server, s3_storages  # noqa: F401
from tests.hub.conftest import ALICE_HF, alice_connected, hub  # noqa: F401
from workers.common.errors import ReadableError
from workers.common.training import CHECKPOINT_WHOLE, CHECKPOINTS
from workers.engine.train.train import latest_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket(s3_server, settings, tmp_path):
    """An empty bucket, and settings as S3_BUCKET makes them (garage/settings.py). The boto3 client reads the bucket
    as an operator would."""
    client = s3_client(s3_server)
    client.create_bucket(Bucket=BUCKET)
    s3_storages(settings, s3_server)
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "worker-a"
    settings.GARAGE_LLM_BASE_URL = settings.GARAGE_LLM_MODEL = settings.GARAGE_LLM_API_KEY = ""
    settings.GARAGE_EVAL_CONTROL = False
    yield client
    s3_empty(client)


def _seconds_valid(url: str) -> float:
    """How long a signed address stays valid (signature version 4 says it)."""
    query = parse_qs(urlsplit(url).query)
    assert "X-Amz-Signature" in query
    return int(query["X-Amz-Expires"][0])


@pytest.fixture
def bob_client(bob):
    from django.test import Client

    client = Client()
    client.force_login(bob)
    return client


def test_it_names_each_kind_of_file_under_its_own_prefix():
    assert artifact_key("c0de/adapter.zip") == "adapters/c0de/adapter.zip"
    assert artifact_key("c0de/model/adapter_config.json") == "adapters/c0de/model/adapter_config.json"
    assert artifact_key("c0de/base/config.json") == "bases/c0de/base/config.json"
    assert artifact_key("c0de/checkpoints/checkpoint-50/x") == "checkpoints/c0de/checkpoints/checkpoint-50/x"
    assert artifact_key("c0de/exports/README.md") == "cards/c0de/exports/README.md"
    assert artifact_key("c0de/exports/merged.zip") == "outputs/merged/c0de/exports/merged.zip"
    assert artifact_key("c0de/exports/gguf-q8_0.zip") == "outputs/gguf/c0de/exports/gguf-q8_0.zip"
    assert artifact_key("grpo/run1/adapter.zip") == "grpo/run1/adapter.zip"
    for crafted in ("../secret.txt", "/etc/passwd", "c0de/../../x", ""):
        with pytest.raises(ReadableError):
            artifact_key(crafted)


def test_the_web_serves_the_workers_files_from_the_bucket_to_the_owner_only(
        bucket, settings, alice, alice_client, alice_api, bob_client, bob_api):
    finetune = trained_finetune(alice, n=10, ratio=0.3, steps=2)
    export = run_job(finetune_export_start(finetune=finetune, kinds=["gguf_q8_0"]))
    assert export.status == Job.Status.SUCCEEDED, export.error
    finetune.refresh_from_db()
    code = finetune.code
    keys = s3_keys(bucket)
    assert {f"artifacts/adapters/{code}/adapter.zip", f"artifacts/outputs/gguf/{code}/exports/gguf-q8_0.zip",
            f"artifacts/cards/{code}/exports/README.md", f"artifacts/bases/{code}/base/config.json"} <= keys
    assert not any("checkpoint" in key for key in keys)
    local = settings.GARAGE_ARTIFACTS_DIR
    expected = {"adapter": (local / finetune.artifact).read_bytes(),
                "gguf_q8_0": (local / finetune.outputs["gguf_q8_0"]["path"]).read_bytes()}
    # The web cannot read the worker's disk.
    shutil.rmtree(local)

    page = alice_client.get(f"/training/{code}/").content.decode()
    assert 'data-role="download"' in page and 'data-output="gguf_q8_0"' in page and "# " in page
    downloads = [("adapter", alice_client.get(f"/training/{code}/download/")),
                 ("adapter", alice_api.get(f"/api/v1/finetunes/{code}/download/")),
                 ("gguf_q8_0", alice_client.get(f"/training/{code}/outputs/gguf_q8_0/download/")),
                 ("gguf_q8_0", alice_api.get(f"/api/v1/finetunes/{code}/outputs/gguf_q8_0/download/"))]
    for name, response in downloads:
        assert response.status_code == 302, name
        location = response["Location"]
        assert location.startswith(settings.STORAGES["artifacts"]["OPTIONS"]["endpoint_url"])
        assert 290 < _seconds_valid(location) <= 300, name
        fetched = httpx.get(location)
        assert fetched.status_code == 200 and fetched.content == expected[name], name
        assert "attachment" in fetched.headers["content-disposition"]
    # The file keeps its name: the page's downloads carry the model's name, the API's the file's (as without a bucket).
    names = [httpx.get(response["Location"]).headers["content-disposition"] for _, response in downloads]
    stem = finetune_file_stem(finetune)
    assert names == [f'attachment; filename="{stem}-adapter.zip"', 'attachment; filename="adapter.zip"',
                     f'attachment; filename="{stem}-gguf-q8_0.zip"', f'attachment; filename="{stem}-gguf-q8_0.zip"']
    assert alice_api.get(f"/api/v1/finetunes/{code}/outputs/").json()[1]["bytes"] == len(expected["gguf_q8_0"])

    for response in (bob_client.get(f"/training/{code}/download/"), bob_api.get(f"/api/v1/finetunes/{code}/download/"),
                     bob_client.get(f"/training/{code}/outputs/gguf_q8_0/download/"),
                     bob_api.get(f"/api/v1/finetunes/{code}/outputs/gguf_q8_0/download/")):
        assert response.status_code == 404 and "Location" not in response
        assert b"X-Amz" not in response.content
    assert alice_client.get(f"/training/{code}/outputs/merged/download/").status_code == 404  # not made


def test_an_export_on_another_machine_fetches_the_adapter_from_the_bucket(bucket, settings, alice):
    finetune = trained_finetune(alice, n=10, ratio=0.3, steps=2)
    with zipfile.ZipFile(settings.GARAGE_ARTIFACTS_DIR / finetune.artifact) as archive:
        adapter_files = set(archive.namelist())
    # A second worker: its own, empty artifacts folder.
    other = settings.GARAGE_ARTIFACTS_DIR.parent / "worker-b"
    settings.GARAGE_ARTIFACTS_DIR = other
    export = run_job(finetune_export_start(finetune=finetune, kinds=["merged", "gguf_f16"]))
    assert export.status == Job.Status.SUCCEEDED, export.error
    assert (other / finetune.artifact).is_file()
    assert {p.name for p in (other / str(finetune.code) / "model").iterdir()} == adapter_files
    assert (other / str(finetune.code) / "base" / "config.json").is_file()
    assert {f"artifacts/outputs/merged/{finetune.code}/exports/merged.zip",
            f"artifacts/outputs/gguf/{finetune.code}/exports/gguf-f16.zip"} <= s3_keys(bucket)
    with zipfile.ZipFile(other / str(finetune.code) / "exports" / "merged.zip") as merged:
        assert "model.safetensors" in merged.namelist()


def test_a_worker_says_readably_when_a_models_files_are_nowhere(bucket, settings, alice):
    finetune = trained_finetune(alice, n=10, ratio=0.3, steps=2)
    # The export was asked for while the files were there; they went missing from the bucket since.
    job = finetune_export_start(finetune=finetune, kinds=["merged"])
    bucket.delete_object(Bucket=BUCKET, Key=f"artifacts/{artifact_key(finetune.artifact)}")
    settings.GARAGE_ARTIFACTS_DIR = settings.GARAGE_ARTIFACTS_DIR.parent / "worker-b"
    export = run_job(job)
    assert export.status == Job.Status.FAILED
    assert "neither on this worker nor in the bucket" in export.error


def test_a_training_keeps_its_newest_whole_checkpoint_in_the_bucket_for_any_worker(bucket, settings, alice):
    finetune = finetune_create(owner=alice, base_model="tiny-gemma3", version=facts_version(alice, 10, 0.3),
                               options={"max_steps": 6, "checkpoint_every": 2, "document_text": False})
    job = run_job(finetune.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    # Each checkpoint was in the bucket when the worker reported it; older ones left it once a newer one was whole.
    steps = [e.data["checkpoint_step"] for e in job.events.filter(data__has_key="checkpoint_step").order_by("id")]
    assert steps == [2, 4, 6]
    code = finetune.code
    stored = {key.split(f"artifacts/checkpoints/{code}/checkpoints/")[1] for key in s3_keys(bucket)
              if key.startswith(f"artifacts/checkpoints/{code}/")}
    local = settings.GARAGE_ARTIFACTS_DIR / str(code) / CHECKPOINTS / "checkpoint-6"
    assert stored == {f"checkpoint-6/{p.relative_to(local).as_posix()}" for p in local.rglob("*") if p.is_file()}
    assert f"artifacts/bases/{code}/base/config.json" in s3_keys(bucket)  # what the resumed run starts from

    # Another worker, with nothing of this run on its disk, fetches the newest checkpoint and the model beside it.
    other = settings.GARAGE_ARTIFACTS_DIR.parent / "worker-b"
    settings.GARAGE_ARTIFACTS_DIR = other
    run = other / str(code)
    assert artifact_checkpoint_fetch(run=run) == 6
    fetched = run / CHECKPOINTS / "checkpoint-6"
    assert {p.name: p.read_bytes() for p in fetched.rglob("*")} == {p.name: p.read_bytes() for p in local.rglob("*")}
    assert (run / "base" / "config.json").is_file() and latest_checkpoint(run) == fetched
    assert artifact_checkpoint_fetch(run=run) is None  # nothing newer than what it has

    # A checkpoint whose last file never reached the bucket (its worker died while copying it) is passed over.
    shutil.rmtree(run)
    bucket.delete_object(Bucket=BUCKET, Key=f"artifacts/checkpoints/{code}/checkpoints/checkpoint-6/{CHECKPOINT_WHOLE}")
    assert artifact_checkpoint_fetch(run=run) is None and not run.exists()


def test_a_push_on_another_machine_takes_the_model_and_its_exports_from_the_bucket(
        bucket, settings, alice, hub, alice_connected):
    finetune = trained_finetune(alice, n=10, ratio=0.3, steps=2)
    assert run_job(finetune_export_start(finetune=finetune, kinds=["gguf_q8_0"])).status == Job.Status.SUCCEEDED
    finetune.refresh_from_db()
    gguf = finetune.outputs["gguf_q8_0"]["files"][0]
    folder = settings.GARAGE_ARTIFACTS_DIR / str(finetune.code)
    made = {"gguf": (folder / "exports" / "gguf" / gguf).read_bytes(),
            "adapter": (folder / "model" / "adapter_model.safetensors").read_bytes()}
    # The worker that made them is gone; the web decides what can be published from what the jobs recorded.
    shutil.rmtree(settings.GARAGE_ARTIFACTS_DIR)
    settings.GARAGE_ARTIFACTS_DIR = settings.GARAGE_ARTIFACTS_DIR.parent / "worker-b"
    assert hub_push_whats(finetune=finetune) == ["adapter", "gguf"]
    for what, repo, name in (("gguf", "valley-gguf", gguf), ("adapter", "valley", "adapter_model.safetensors")):
        push = run_job(hub_push_start(finetune=finetune, repo=repo, what=what, confirm_worse=True))
        assert push.status == Job.Status.SUCCEEDED, push.error
        assert hub.file(f"{ALICE_HF}/{repo}", name) == made[what]
        assert b"Gemma Garage" in hub.file(f"{ALICE_HF}/{repo}", "README.md")
