"""Importing existing datasets (files with or without a column mapping, the Hugging Face Hub) and exporting JSONL."""
import json
import subprocess
import sys
import time
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import Document, QAPair
from apps.datasets.services import dataset_create, dataset_import_hub_start
from tests.datasets.curation_helpers import dataset_with_pairs
from tests.fixtures.jobs import run_job
from tests.fakes.hub_server import HubServer
from tests.live import ROOT, child_env
from workers.common.records import STYLES

pytestmark = pytest.mark.django_db


def triples(dataset):
    return list(dataset.pairs.included().order_by("id").values_list("system", "question", "answer"))


def new_dataset(api, name="Imported"):
    return api.post("/api/v1/datasets/", {"name": name}, format="json").json()["code"]


def import_file(api, code, name, data, **fields):
    return api.post(f"/api/v1/datasets/{code}/import/", {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def import_job(api, code, name, data, **fields) -> Job:
    """Post a file import, which answers 202 with its job, and run the job as the worker would."""
    response = import_file(api, code, name, data, **fields)
    assert response.status_code == 202, response.content
    job = Job.objects.get(code=response.json()["code"])
    assert job.kind == Job.Kind.IMPORT and job.status == Job.Status.QUEUED and job.queue == "default"
    assert not QAPair.objects.filter(dataset__code=code, source=QAPair.Source.IMPORTED).exists()  # nothing read yet
    return run_job(job)


@pytest.mark.parametrize("style", STYLES)
def test_it_round_trips_every_export_style_through_the_api(alice, alice_api, style):
    source = dataset_with_pairs(alice)
    response = alice_api.get(f"/api/v1/datasets/{source.code}/export/", {"style": style})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/jsonl")
    assert response["Content-Disposition"] == f'attachment; filename="lumen-valley-{style}.jsonl"'
    data = b"".join(response.streaming_content)
    assert len(data.splitlines()) == 4
    code = new_dataset(alice_api)
    job = import_job(alice_api, code, f"export.{'jsonl' if style != 'alpaca' else 'json'}", data)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.result["imported"] == 4 and job.result["skipped"] == 0
    assert job.result["shape"] == {"messages": "messages", "alpaca": "alpaca", "sharegpt": "conversations"}[style]
    target = source.__class__.objects.get(code=code)
    assert triples(target) == triples(source)
    assert set(target.pairs.values_list("source", flat=True)) == {QAPair.Source.IMPORTED}


def test_it_exports_a_frozen_version_by_number_and_refuses_unknown_styles(alice, alice_api):
    dataset = dataset_with_pairs(alice)
    alice_api.post(f"/api/v1/datasets/{dataset.code}/versions/", {}, format="json")
    dataset.pairs.update(answer="Changed.")
    frozen = b"".join(alice_api.get(f"/api/v1/datasets/{dataset.code}/export/", {"version": 1, "style": "alpaca"}).streaming_content)
    assert [json.loads(line)["output"] for line in frozen.splitlines()] == ["East of the copper hills.", "Green.", "Three.",
                                                                           "The Amber river."]
    response = alice_api.get(f"/api/v1/datasets/{dataset.code}/export/", {"version": 1}, HTTP_ACCEPT="application/jsonl")
    assert response.status_code == 200 and response["Content-Disposition"].endswith('-v1-messages.jsonl"')
    assert alice_api.get(f"/api/v1/datasets/{dataset.code}/export/", {"version": 7}).status_code == 404
    bad = alice_api.get(f"/api/v1/datasets/{dataset.code}/export/", {"style": "csv"})
    assert bad.status_code == 400 and "Choose one of: messages, alpaca, sharegpt" in bad.json()["message"]


def test_it_imports_a_csv_with_a_column_mapping_and_keeps_the_file_as_the_source(alice_api):
    code = new_dataset(alice_api)
    csv = "Prompt;Context;Reply;Persona\nTranslate;cat;chat;You translate.\nTranslate;dog;chien;\n;;orphan;\n".encode("cp1252")
    job = import_job(alice_api, code, "words.csv", csv,
                     mapping=json.dumps({"question": ["Prompt", "Context"], "answer": "Reply", "system": "Persona"}))
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    body = job.result
    assert (body["imported"], body["skipped"], body["shape"], body["filename"]) == (2, 1, "mapping", "words.csv")
    dataset = Document.objects.get(code=body["document"]).dataset
    assert triples(dataset) == [("You translate.", "Translate\n\ncat", "chat"), ("", "Translate\n\ndog", "chien")]
    document = Document.objects.get(code=body["document"])
    assert (document.format, document.status, document.size) == ("csv", Document.Status.READY, len(csv))
    assert document.file.read() == csv
    pairs = alice_api.get(f"/api/v1/datasets/{code}/pairs/").json()["results"]
    assert {p["document"] for p in pairs} == {body["document"]}
    documents = alice_api.get(f"/api/v1/datasets/{code}/documents/").json()
    assert [d["filename"] for d in documents] == ["words.csv"]


@pytest.mark.parametrize("name, data, fields, message", [
    ("notes.csv", b"title,body\nA,B\n", {"mapping": '{"question": "title"}'}, "Say which columns hold the question and the answer"),
    ("notes.csv", b"title,body\nA,B\n", {"mapping": "not json"}, "must be a JSON object"),
    ("notes.pdf", b"%PDF-1.4", {}, "import takes .json, .jsonl"),
    ("empty.jsonl", b"", {}, "is empty"),
])
def test_it_refuses_a_bad_import_request_at_once(alice_api, name, data, fields, message):
    code = new_dataset(alice_api)
    response = import_file(alice_api, code, name, data, **fields)
    assert response.status_code == 400, response.content
    assert message in str(response.json()), response.json()
    assert not QAPair.objects.exists() and not Document.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("name, data, fields, message", [
    ("notes.csv", b"title,body\nA,B\n", {}, "does not look like chat, question/answer"),
    ("notes.csv", b"title,body\nA,B\n", {}, "its columns: title, body"),
    ("notes.csv", b"title,body\nA,B\n", {"mapping": '{"question": "q", "answer": "body"}'}, "No column named 'q'. The columns are: body, title"),
    ("notes.csv", b"title,body\n,\n", {"mapping": '{"question": "title", "answer": "body"}'}, "no rows with both a question and an answer"),
    ("broken.jsonl", b'{"question": "Q?", "answer": "A."}\n{oops}\n', {}, "Line 2 is not valid JSON"),
])
def test_it_explains_in_the_failed_job_what_is_wrong_with_the_data(alice_api, name, data, fields, message):
    code = new_dataset(alice_api)
    job = import_job(alice_api, code, name, data, **fields)
    assert job.status == Job.Status.FAILED and message in job.error_message, job.error_message
    assert not QAPair.objects.exists()
    document = Document.objects.get()  # the upload stays listed, marked failed with the same reason
    assert document.status == Document.Status.FAILED and message in document.error_message
    assert alice_api.get(f"/api/v1/jobs/{job.code}/").json()["error_message"] == job.error_message


def test_it_needs_exactly_one_source_and_honours_the_upload_limit(alice_api, settings):
    code = new_dataset(alice_api)
    both = import_file(alice_api, code, "a.jsonl", b'{"question": "Q?", "answer": "A."}\n', hub_id="acme/qa")
    assert both.status_code == 400 and "one of the two" in both.json()["message"]
    assert alice_api.post(f"/api/v1/datasets/{code}/import/", {}, format="json").status_code == 400
    settings.GARAGE_MAX_UPLOAD_BYTES = 10
    big = import_file(alice_api, code, "a.jsonl", b'{"question": "Q?", "answer": "A."}\n')
    assert big.status_code == 400 and "upload limit" in big.json()["message"]


def test_it_refuses_hub_imports_at_once_when_offline_or_malformed(alice_api, monkeypatch):
    code = new_dataset(alice_api)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    offline = alice_api.post(f"/api/v1/datasets/{code}/import/", {"hub_id": "openai/gsm8k"}, format="json")
    assert offline.status_code == 400 and "offline" in offline.json()["message"] and time.monotonic() - started < 2
    monkeypatch.delenv("HF_HUB_OFFLINE")
    malformed = alice_api.post(f"/api/v1/datasets/{code}/import/", {"hub_id": "../../etc/passwd"}, format="json")
    assert malformed.status_code == 400 and "not a Hugging Face dataset id" in malformed.json()["message"]
    assert not Job.objects.exists()


def test_it_queues_hub_imports_as_jobs(alice_api):
    code = new_dataset(alice_api)
    response = alice_api.post(f"/api/v1/datasets/{code}/import/",
                              {"hub_id": "openai/gsm8k", "config": "main", "limit": 50,
                               "mapping": {"question": "question", "answer": "answer"}}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(code=response.json()["code"])
    assert job.kind == Job.Kind.IMPORT and job.queue == "default"
    assert {k: job.config[k] for k in ("hub_id", "config", "split", "limit", "mapping")} == {
        "hub_id": "openai/gsm8k", "config": "main", "split": "train", "limit": 50,
        "mapping": {"question": ["question"], "answer": ["answer"]}}


def run_tasks_in_a_process(jobs, cwd=ROOT, **env):
    """Run the jobs' real Celery tasks (claim, body, final status) in a fresh process, as the headless CLI does:
    the Hugging Face libraries read HF_ENDPOINT when imported, so only a new process can be pointed at a fake Hub.
    `cwd` is the process's working directory (the project is found through PYTHONPATH wherever it runs)."""
    lines = ["import django", "django.setup()", "from workers.tasks import run_job"]
    for job in jobs:
        task_id = str(uuid.uuid4())
        Job.objects.filter(pk=job.pk).update(celery_task_id=task_id)
        lines.append(f"run_job.apply(args=[{job.pk}], task_id='{task_id}')")
    done = subprocess.run([sys.executable, "-c", "\n".join(lines)], cwd=cwd, env=child_env(PYTHONPATH=ROOT, **env),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    for job in jobs:
        job.refresh_from_db()


@pytest.mark.django_db(transaction=True)
def test_it_imports_from_the_hub_and_fails_readably_when_it_cannot(alice, tmp_path):
    rows = [{"instruction": f"Add {i} and {i}.", "input": "", "output": str(2 * i)} for i in range(30)]
    files = {"data/train.jsonl": "".join(json.dumps(r) + "\n" for r in rows).encode(),
             "README.md": b"---\nlicense: mit\n---\n# Sums\n"}
    dataset = dataset_create(owner=alice, name="Sums")
    with HubServer({"acme/sums": files}) as hub:
        jobs = [dataset_import_hub_start(dataset=dataset, dataset_id=hub_id, limit=limit, start=False)
                for hub_id, limit in (("acme/sums", 25), ("acme/missing", None), ("acme/unreachable", None))]
        started = time.monotonic()
        run_tasks_in_a_process(jobs, HF_ENDPOINT=hub.url, HF_HOME=tmp_path / "hf", HF_HUB_DISABLE_TELEMETRY=1)
        elapsed = time.monotonic() - started
    imported, missing, unreachable = jobs
    assert imported.status == Job.Status.SUCCEEDED, imported.error or imported.error_message
    assert imported.result["imported"] == 25 and imported.result["shape"] == "alpaca"
    assert triples(dataset)[:2] == [("", "Add 0 and 0.", "0"), ("", "Add 1 and 1.", "2")]
    source = Document.objects.get(code=imported.result["document"])
    assert (source.filename, source.format) == ("acme/sums (train)", "hub")
    assert set(dataset.pairs.values_list("document", flat=True)) == {source.pk}
    assert missing.status == Job.Status.FAILED and missing.error_message == \
        "No dataset 'acme/missing' on the Hugging Face Hub (or it is private)."
    assert unreachable.status == Job.Status.FAILED and unreachable.error_message.startswith("Could not reach the Hugging Face Hub")
    assert "Traceback" not in missing.error_message + unreachable.error_message
    assert elapsed < 60
