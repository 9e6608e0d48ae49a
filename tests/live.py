"""Real processes for tests: a Celery worker and the ASGI server, both on the test database."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes started by the tests."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def child_env(**extra) -> dict:
    env = dict(os.environ, DATABASE_URL=test_database_url(), DJANGO_SETTINGS_MODULE="garage.settings",
               REDIS_URL=settings.REDIS_URL, GARAGE_VAR_DIR=str(settings.VAR_DIR), PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"Timed out after {timeout}s waiting for {what}")


def jobs_settle(timeout: float = 30) -> None:
    """Cancel every job not yet final and wait until the worker runs no task: neither a job (which stops at its
    next cancel check) nor a task that has just received a cancelled job's message and is about to find it final.
    Gives up quietly after `timeout`: a test's own assertions have already been made."""
    from apps.core.models import Job
    from apps.core.services import job_cancel
    from garage.celery import app

    for job in Job.objects.exclude(status__in=Job.FINAL):
        job_cancel(job=job)
    deadline = time.monotonic() + timeout

    def busy() -> bool:
        if Job.objects.filter(status=Job.Status.RUNNING).exists():
            return True
        active = app.control.inspect(timeout=0.5).active() or {}
        return any(tasks for tasks in active.values())

    while time.monotonic() < deadline and busy():
        time.sleep(0.1)


@contextmanager
def queues_taken_from_running_workers(queues):
    """While inside, the workers already running (the session's, when a test started it) take no message from
    `queues`, so that a test alone decides what happens to its messages there: its own workers, started inside, take
    them, or none does. Celery's remote control (cancel_consumer, then add_consumer) does it, without a restart."""
    from garage.celery import app

    consumed = app.control.inspect(timeout=1.0).active_queues() or {}
    taken = [(worker, queue["name"]) for worker, active in consumed.items() for queue in active
             if queue["name"] in queues]
    for worker, queue in taken:
        app.control.cancel_consumer(queue, destination=[worker], reply=True, timeout=5.0)
    try:
        yield
    finally:
        for worker, queue in taken:
            app.control.add_consumer(queue, destination=[worker], reply=True, timeout=5.0)


def _stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 15):
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def celery_worker(queues: str = "default,gpu,inference", concurrency: int = 2, name: str = "test", log_path: Path | None = None,
                  pool: str = "prefork", **env):
    """A real Celery worker process on the test database; yields the Popen."""
    log_path = log_path or Path(settings.VAR_DIR) / f"worker-{name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "garage", "worker", "-Q", queues, "-c", str(concurrency), "-P", pool,
             "-n", f"{name}-{os.getpid()}@%h", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=child_env(**env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for(lambda: "ready." in log_path.read_text() or process.poll() is not None, 60, what="the worker")
            if process.poll() is not None:
                raise RuntimeError(f"The worker exited: {log_path.read_text()[-3000:]}")
            yield process
        finally:
            _stop(process)


@contextmanager
def asgi_server(**env):
    """The real ASGI application under uvicorn on a free port; yields its base URL."""
    port = free_port()
    log_path = Path(settings.VAR_DIR) / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "garage.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=child_env(**env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            def up():
                if process.poll() is not None:
                    raise RuntimeError(f"The server exited: {log_path.read_text()[-3000:]}")
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", port)) == 0

            wait_for(up, 60, what="the web server")
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)
