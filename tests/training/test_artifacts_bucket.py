"""Every file of a tuned model in one bucket (apps.training.artifacts), against a real S3-compatible server (moto's):
the worker uploads what it records, the web serves downloads from the bucket through short-lived signed addresses
without reading any local disk, and a worker on another machine fetches what it needs from the bucket."""
import shutil
import logging
import socket
import time
import zipfile
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from apps.core.models import Job
from apps.training.artifacts import artifact_key
from apps.training.exports import finetune_export_start, finetune_file_stem
from tests.evaluation.test_heldout import trained_finetune
from tests.fixtures.jobs import run_job
from workers.common.errors import ReadableError

pytestmark = pytest.mark.django_db

BUCKET = "garage-test"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free port of this machine, for the module: its address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server, settings, tmp_path):
    """An empty bucket, and settings as S3_BUCKET makes them (garage/settings.py): the artifacts storage under
    artifacts/ of the bucket. The boto3 client reads the bucket as an operator would."""
    client = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id=CREDENTIALS["access_key"],
                          aws_secret_access_key=CREDENTIALS["secret_key"], region_name=CREDENTIALS["region_name"])
    client.create_bucket(Bucket=BUCKET)
    options = {"bucket_name": BUCKET, "endpoint_url": s3_server, **CREDENTIALS, "default_acl": "private",
               "querystring_auth": True}
    settings.STORAGES = {**settings.STORAGES, "artifacts": {"BACKEND": "storages.backends.s3.S3Storage",
                                                            "OPTIONS": {**options, "location": "artifacts"}}}
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "worker-a"
    settings.GARAGE_LLM_BASE_URL = settings.GARAGE_LLM_MODEL = settings.GARAGE_LLM_API_KEY = ""
    settings.GARAGE_EVAL_CONTROL = False
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _seconds_valid(url: str) -> float:
    """How long a signed address stays valid: a signature version 4 address says it, a version 2 one says when."""
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:
        return int(query["X-Amz-Expires"][0])
    assert "Signature" in query
    return int(query["Expires"][0]) - time.time()


def _keys(client) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


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
    keys = _keys(bucket)
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
            f"artifacts/outputs/gguf/{finetune.code}/exports/gguf-f16.zip"} <= _keys(bucket)
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
