"""A Hub import loads only from the Hugging Face Hub: `datasets.load_dataset` prefers a local file or folder of the
same name, and a worker's working directory may hold every user's uploads (var/media is a valid-looking id)."""
import json

import pytest

from apps.core.models import Job
from apps.datasets.models import QAPair
from apps.datasets.services import dataset_create, dataset_import_hub_start
from tests.datasets.test_import_export import run_tasks_in_a_process
from tests.fakes.hub_server import HubServer
from workers.engine.evaluate.benchmarks import load_aime
from workers.common.errors import ReadableError
from workers.common.records import hub_dataset_id_check

pytestmark = pytest.mark.django_db

SECRET = {"question": "What is the other user's secret?", "answer": "It was read from a local folder."}


def local_folder(root, name):
    """A folder named like a Hub dataset id, holding data that load_dataset would happily read."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text(json.dumps(SECRET) + "\n")
    return folder


@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_an_id_that_is_a_local_folder_and_still_reaches_the_hub(alice, tmp_path):
    rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(5)]
    hub_files = {"data/train.jsonl": "".join(json.dumps(r) + "\n" for r in rows).encode()}
    dataset = dataset_create(owner=alice, name="Sums")
    workdir = tmp_path / "worker"
    workdir.mkdir()
    with HubServer({"acme/sums": hub_files, "var/media": hub_files}) as hub:
        # Queued while no such folder exists (so the web's own check passes), then the folder appears beside the
        # worker: the check where the data is loaded is the one that counts.
        jobs = [dataset_import_hub_start(dataset=dataset, dataset_id=hub_id, start=False) for hub_id in ("var/media", "acme/sums")]
        local_folder(workdir, "var/media")
        run_tasks_in_a_process(jobs, cwd=workdir, HF_ENDPOINT=hub.url, HF_HOME=tmp_path / "hf", HF_HUB_DISABLE_TELEMETRY=1)
        requests = list(hub.requests)
    local, remote = jobs
    assert local.status == Job.Status.FAILED
    assert local.error_message == ("'var/media' is also the name of a folder on this server, so it is not read: only "
                                   "datasets on the Hugging Face Hub can be imported by id.")
    assert not any("var/media" in request for request in requests)  # refused before anything was fetched
    assert remote.status == Job.Status.SUCCEEDED, remote.error_message
    assert remote.result["imported"] == 5 and any("/api/datasets/acme/sums" in request for request in requests)
    assert not QAPair.objects.filter(question=SECRET["question"]).exists()


def test_the_request_is_refused_at_once_when_the_web_process_sees_such_a_folder(alice_api, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local_folder(tmp_path, "acme/private")
    code = alice_api.post("/api/v1/datasets/", {"name": "Sums"}, format="json").json()["code"]
    response = alice_api.post(f"/api/v1/datasets/{code}/import/", {"hub_id": "acme/private"}, format="json")
    assert response.status_code == 400 and "is also the name of a folder on this server" in response.json()["message"]
    accepted = alice_api.post(f"/api/v1/datasets/{code}/import/", {"hub_id": "acme/public"}, format="json")
    assert accepted.status_code == 202
    assert list(Job.objects.values_list("config__hub_id", flat=True)) == ["acme/public"]


@pytest.mark.parametrize("dataset_id", ["json", "csv", "imagefolder", "gsm8k", "./var/media", "../x/y", "/etc/passwd",
                                        "var/media/documents", "a/.b", "a/b..c", "a" * 100 + "/" + "b" * 101])
def test_it_takes_only_owner_and_name_ids(dataset_id):
    # A bare name is one of the `datasets` library's builders ("json", "csv"...), which read files from the
    # working directory; paths are paths.
    with pytest.raises(ReadableError, match="is not a Hugging Face dataset id"):
        hub_dataset_id_check(dataset_id)
    assert hub_dataset_id_check(" openai/gsm8k ") == "openai/gsm8k"


def test_the_benchmark_loader_uses_the_same_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local_folder(tmp_path, "acme/aime")
    with pytest.raises(ReadableError, match="'acme/aime' is not a Hugging Face dataset id"):
        load_aime("acme/aime")
