"""What /healthz checks: the database, Redis, the media storage, and the workers of each Celery queue.

The checks run side by side, each in a thread of its own, and whatever has not answered after GARAGE_HEALTH_TIMEOUT
seconds is reported as timed out: a database or a storage that hangs cannot hold the answer up (a Redis that hangs is
cut off by the client's own socket timeouts too). A thread still hanging is left to end by itself; it does nothing
but wait.

The report says what failed and never why in words that could carry a host name, a path or a credential (exception
messages do): the reasons go to the log."""
from __future__ import annotations

import logging
import threading
import time
import uuid

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from apps.core.presence import workers_seen
from apps.core.selectors import GPU_QUEUE
from garage.celery import CONTROL_QUEUE

logger = logging.getLogger(__name__)

OK, DEGRADED, FAILED, TIMED_OUT = "ok", "degraded", "failed", "timed out"


def celery_queues() -> list[str]:
    """Every queue the project's workers serve."""
    return ["default", GPU_QUEUE, settings.GARAGE_INFERENCE_QUEUE, CONTROL_QUEUE]


def redis_client(*, timeout: float) -> redis.Redis:
    """A client of the broker's Redis that gives up after `timeout` seconds, connecting or waiting for an answer."""
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout)


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this thread's own connection: nothing else will close it
    return {}


def _check_redis(timeout: float, queues: list[str]) -> dict:
    """Redis answers, and says how many workers of each queue were seen lately (apps.core.presence)."""
    client = redis_client(timeout=timeout)
    try:
        client.ping()
        return {"workers": workers_seen(client=client, queues=queues)}
    finally:
        client.close()


def _check_storage() -> dict:
    """A small file can be written to the media storage (local folder or bucket) and deleted."""
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    default_storage.delete(name)
    return {}


def _run_side_by_side(checks: dict, timeout: float) -> dict[str, dict]:
    """Run each check in a daemon thread; {name: {"status", "seconds", ...what the check returned}}."""
    results: dict[str, dict] = {}

    def run(name, check):
        started = time.monotonic()
        try:
            detail = {"status": OK, **check()}
        except Exception:  # any failure is the answer here; its detail goes to the log, never to the client
            logger.warning("Health check %s failed", name, exc_info=True)
            detail = {"status": FAILED}
        results[name] = {**detail, "seconds": round(time.monotonic() - started, 4)}

    threads = [threading.Thread(target=run, args=item, name=f"healthz-{item[0]}", daemon=True) for item in checks.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    answered = dict(results)  # a check finishing from now on is not waited for
    for name in checks:
        if name not in answered:
            logger.warning("Health check %s did not answer within %g s", name, timeout)
    return {name: answered.get(name, {"status": TIMED_OUT, "seconds": timeout}) for name in checks}


def health_report() -> tuple[dict, bool]:
    """The state of everything the site needs, and whether it is healthy.

    Unhealthy (for a 503): the database, Redis or the storage failed or timed out, or a queue of
    GARAGE_HEALTH_REQUIRED_QUEUES has no worker seen within GARAGE_STALE_AFTER seconds. A queue without a worker
    that is not required makes the status "degraded", which is healthy: pages, uploads and downloads still work, and
    the work waits for its worker."""
    timeout = settings.GARAGE_HEALTH_TIMEOUT
    required = settings.GARAGE_HEALTH_REQUIRED_QUEUES
    # A required queue that no worker could serve (a misspelt name) is asked about too, and shows as missing.
    queues = celery_queues() + sorted(set(required) - set(celery_queues()))
    checks = _run_side_by_side({"database": _check_database, "redis": lambda: _check_redis(timeout, queues),
                                "storage": _check_storage}, timeout)
    seen = checks["redis"].pop("workers", None)
    if seen is None:
        checks["workers"] = {"status": FAILED}  # unknown without Redis, whose own failure already fails the report
    else:
        missing = [queue for queue in queues if not seen[queue]]
        status = FAILED if set(required) & set(missing) else DEGRADED if missing else OK
        checks["workers"] = {"status": status, "queues": seen, "missing": missing}
    statuses = {check["status"] for check in checks.values()}
    healthy = statuses <= {OK, DEGRADED}
    return {"status": (DEGRADED if DEGRADED in statuses else OK) if healthy else FAILED, "checks": checks}, healthy
