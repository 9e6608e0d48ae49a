"""Log lines (garage/logs.py, settings.LOGGING): each with its time, level, process and, while a job runs, the job's
code, as text or (LOG_FORMAT=json) one JSON object per line, from the web process and the Celery workers alike; and
the optional Sentry reporting, tried against a local endpoint that records what it receives."""
import gzip
import io
import json
import logging
import re
import subprocess
import sys
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings

from apps.core.models import Job
from apps.core.services import job_create, job_enqueue
from garage.logs import JsonFormatter, job_logging
from tests.fixtures.jobs import run_job
from tests.live import celery_worker, child_env, wait_for

ROOT = Path(__file__).resolve().parents[2]
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
FIELDS = {"timestamp", "level", "logger", "process", "pid", "job", "message", "exc_info"}


@pytest.fixture
def console():
    """The handler settings.LOGGING puts on the root logger, its filter and formatter as configured, writing into a
    buffer for the length of the test."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    buffer = io.StringIO()
    stream = handler.setStream(buffer)
    formatter = handler.formatter
    yield handler, buffer
    handler.setStream(stream)
    handler.setFormatter(formatter)


def lines_of(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


# ------------------------------------------------------------------------------------------ a live worker, as JSON

@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_marks_a_jobs_lines_with_its_code_in_a_live_worker_writing_json(alice, tmp_path):
    queue = "logs"  # a queue of its own, which no other worker of the suite takes jobs from
    sleeper = job_create(owner=alice, kind=Job.Kind.SLEEP, queue=queue, config={"steps": 2, "seconds": 0}, start=False)
    vanished = job_create(owner=alice, kind=Job.Kind.SLEEP, queue=queue, start=False)
    Job.objects.filter(pk=vanished.pk).update(kind="vanished")  # a kind that nothing declares: the job fails unexpectedly
    log_path = tmp_path / "worker.log"
    with celery_worker(queues=queue, concurrency=1, name="logs", log_path=log_path, LOG_FORMAT="json"):
        for job in (sleeper, vanished):
            job_enqueue(Job.objects.get(pk=job.pk))
        wait_for(lambda: not Job.objects.filter(pk__in=[sleeper.pk, vanished.pk]).exclude(status__in=Job.FINAL).exists(),
                 60, what="both jobs to end")
    text = log_path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert records and all(set(record) == FIELDS for record in records)
    # What is not JSON is Celery's start-up banner, printed before logging starts: no line in Celery's own format.
    assert not [line for line in text.splitlines() if not line.startswith("{") and re.search(r"INFO|ERROR|Traceback", line)]
    for record in records:
        datetime.fromisoformat(record["timestamp"])

    [sleeping] = [r for r in records if r["logger"] == "apps.core.jobs"]
    assert sleeping["message"] == "Sleeping 2 steps of 0 s" and sleeping["level"] == "INFO"
    assert sleeping["job"] == str(sleeper.code) and sleeping["process"].startswith("ForkPoolWorker-")
    assert sleeping["exc_info"] is None

    [failed] = [r for r in records if r["logger"] == "workers.jobs" and r["level"] == "ERROR"]
    assert failed["job"] == str(vanished.code) and failed["message"] == f"Job {vanished.code} failed"
    assert failed["exc_info"].startswith("Traceback (most recent call last):")
    assert failed["exc_info"].endswith("RuntimeError: No job type declares the kind 'vanished'")

    # Celery's own lines, outside any job, are in the same format and carry no job.
    [ready] = [r for r in records if r["message"].endswith(" ready.")]
    assert ready["logger"] == "celery.apps.worker" and ready["job"] is None and ready["process"] == "MainProcess"
    received = [r for r in records if r["message"].startswith("Task jobs.run[") and "received" in r["message"]]
    assert len(received) == 2 and all(r["job"] is None for r in received)


# ------------------------------------------------------------------------------------------ in this process, as text

@pytest.mark.django_db
def test_it_marks_the_lines_of_a_job_run_as_a_worker_runs_it_and_no_other(alice, console):
    handler, buffer = console
    job = run_job(job_create(owner=alice, kind=Job.Kind.SLEEP, config={"steps": 1, "seconds": 0}, start=False))
    assert job.status == Job.Status.SUCCEEDED
    logging.getLogger("apps.core").warning("Nothing running")
    [sleeping] = [line for line in lines_of(buffer) if "Sleeping" in line]
    outside = lines_of(buffer)[-1]
    assert re.fullmatch(rf"{TIMESTAMP} INFO \[MainProcess:\d+\] job={job.code} apps\.core\.jobs: Sleeping 1 steps of 0 s",
                        sleeping)
    assert re.fullmatch(rf"{TIMESTAMP} WARNING \[MainProcess:\d+\] apps\.core: Nothing running", outside)


def test_it_gives_a_thread_started_by_a_job_the_jobs_code_while_it_is_the_only_one(console):
    handler, buffer = console
    log = logging.getLogger("workers.common.llm")

    def in_a_thread(message):
        thread = threading.Thread(target=log.warning, args=(message,))
        thread.start()
        thread.join()

    with job_logging("job-a"):
        in_a_thread("retrying a chat request")  # as the heartbeat and parallel chat requests do
    in_a_thread("after the job")
    both_running, a_done = threading.Barrier(2), threading.Event()

    def run(code, message):
        with job_logging(code):
            both_running.wait()
            log.warning(message)
            if code == "job-b":
                in_a_thread("whose thread?")  # two jobs run: a thread's line cannot be told apart, so it has none
                a_done.set()
            else:
                a_done.wait()

    threads = [threading.Thread(target=run, args=(code, f"from {code}")) for code in ("job-a", "job-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs = {line.split(": ", 1)[1]: re.search(r"job=(\S+)", line) for line in lines_of(buffer)}
    assert {message: match and match[1] for message, match in jobs.items()} == {
        "retrying a chat request": "job-a", "after the job": None, "from job-a": "job-a", "from job-b": "job-b",
        "whose thread?": None}


# ------------------------------------------------------------------------------------------ JSON, secrets

def test_it_writes_a_json_line_with_the_traceback_as_text(console):
    handler, buffer = console
    handler.setFormatter(JsonFormatter())
    with job_logging("job-x"):
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("workers.jobs").exception("Job %s failed", "job-x")
    logging.getLogger("workers.jobs").info("Idle, ünïcode")
    failed, idle = (json.loads(line) for line in lines_of(buffer))
    assert failed["level"] == "ERROR" and failed["job"] == "job-x" and failed["message"] == "Job job-x failed"
    assert failed["exc_info"].startswith("Traceback (most recent call last):") and "KeyError: 'missing'" in failed["exc_info"]
    assert idle == {**idle, "job": None, "exc_info": None, "message": "Idle, ünïcode", "logger": "workers.jobs"}
    assert datetime.fromisoformat(idle["timestamp"]).utcoffset().total_seconds() == 0


def test_it_keeps_request_bodies_and_settings_out_of_the_lines(console, rf):
    handler, buffer = console
    request = rf.post("/accounts/login/", {"username": "alice@example.com", "password": "hunter2-hunter2"})
    for formatter in (handler.formatter, JsonFormatter()):
        handler.setFormatter(formatter)
        try:
            raise ValueError("a view failed")
        except ValueError:
            # As Django logs a failed request: the request itself rides along on the record.
            logging.getLogger("django.request").error("Internal Server Error: %s", request.path, exc_info=True,
                                                      extra={"status_code": 500, "request": request, "settings": settings})
    written = buffer.getvalue()
    assert written.count("Internal Server Error: /accounts/login/") == 2 and "ValueError: a view failed" in written
    assert "hunter2" not in written and settings.SECRET_KEY not in written and "alice@example.com" not in written


def test_it_refuses_an_unknown_log_format_readably():
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                            env=child_env(LOG_FORMAT="xml"), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LOG_FORMAT='xml' is not a log format: write \"text\" or \"json\"." in result.stderr


# ------------------------------------------------------------------------------------------ the web process

def test_it_writes_uvicorns_lines_in_the_same_format(server):
    import urllib.request

    with urllib.request.urlopen(f"{server}/accounts/login/?from=logs-test", timeout=10) as response:
        assert response.status == 200
    log = Path(settings.VAR_DIR) / "server.log"
    wait_for(lambda: "from=logs-test" in log.read_text(), 10, what="the request's line")
    text = log.read_text()
    assert re.search(rf"^{TIMESTAMP} INFO \[MainProcess:\d+\] uvicorn\.error: Started server process \[\d+\]$", text, re.M)
    assert re.search(rf'^{TIMESTAMP} INFO \[MainProcess:\d+\] uvicorn\.access: 127\.0\.0\.1:\d+ - '
                     rf'"GET /accounts/login/\?from=logs-test HTTP/1\.1" 200$', text, re.M)


# ------------------------------------------------------------------------------------------ Sentry

def test_it_starts_no_sentry_without_a_dsn():
    sentry_sdk = pytest.importorskip("sentry_sdk")
    assert not sentry_sdk.get_client().is_active()


class _Envelopes(BaseHTTPRequestHandler):
    """A stand-in for Sentry's ingestion endpoint: keeps each envelope it is sent."""
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


CAPTURE_AN_ERROR = """
import logging, django
django.setup()
import sentry_sdk
from garage.logs import job_logging
with job_logging("job-s"):
    provider_key = "sk-local-variable-secret"
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("workers.jobs").exception("Job %s failed", "job-s")
sentry_sdk.flush(10)
"""


def test_it_sends_errors_to_sentry_tagged_with_the_job_and_without_local_variables():
    pytest.importorskip("sentry_sdk")
    _Envelopes.received = []
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), _Envelopes)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    try:
        env = {k: v for k, v in child_env(SENTRY_DSN=f"http://publickey@127.0.0.1:{endpoint.server_port}/42").items()
               if "proxy" not in k.lower()}
        result = subprocess.run([sys.executable, "-c", CAPTURE_AN_ERROR], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=60)
    finally:
        endpoint.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    items = [json.loads(line) for envelope in _Envelopes.received for line in envelope.splitlines() if line.strip()]
    [event] = [item for item in items if "exception" in item]
    assert event["tags"]["job"] == "job-s" and event["logger"] == "workers.jobs"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ZeroDivisionError"
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
    assert not any(b"sk-local-variable-secret" in envelope for envelope in _Envelopes.received)


def test_it_says_how_to_install_sentry_when_the_dsn_is_set_without_it():
    hide_sentry = "import sys; sys.modules['sentry_sdk'] = None; import django; django.setup()"
    result = subprocess.run([sys.executable, "-c", hide_sentry], cwd=ROOT, env=child_env(SENTRY_DSN="http://k@127.0.0.1:9/1"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SENTRY_DSN is set but sentry-sdk is not installed: run `pip install sentry-sdk`" in result.stderr
