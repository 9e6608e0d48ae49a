"""Log lines people can read and ship, from every process (web, workers, `garage run`'s children).

Each line carries its time (ISO-8601, UTC), level, process and logger, and, while a job runs, the job's code
(one line, cut in two here):

    2026-12-05T19:17:14.039Z INFO [worker-default/ForkPoolWorker-2:31548] job=3ae469c2-91c1-43dc-bae8-5e22c5b8b46b
    apps.core.jobs: Sleeping 3 steps of 0.5 s

LOG_FORMAT=json writes the same fields as one JSON object per line, for a log shipper. settings.LOGGING puts the
filter and the formatters below on its one handler; the worker marks the lines of a job with `job_logging`."""
from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

from django.core.exceptions import ImproperlyConfigured

# `garage run` names each child (web, worker-default, ...), so that its lines say which one wrote them.
PROCESS_NAME_VARIABLE = "GARAGE_PROCESS_NAME"

_job_in_context: ContextVar[str | None] = ContextVar("garage_job", default=None)
# The jobs running in this process, in any thread. A thread started by a job's body (the heartbeat, chat requests
# sent in parallel) does not inherit the job's context; in a process that runs one job at a time, as prefork and solo
# workers do, its lines still belong to that job.
_jobs_in_process: list[str] = []
_jobs_lock = threading.Lock()


@contextmanager
def job_logging(code: str):
    """Mark every line logged inside this block (and, while it is the only job of its process, by the threads it
    starts) with the job's code."""
    token = _job_in_context.set(code)
    with _jobs_lock:
        _jobs_in_process.append(code)
    try:
        yield
    finally:
        with _jobs_lock:
            _jobs_in_process.remove(code)
        _job_in_context.reset(token)


def current_job() -> str | None:
    """The code of the job whose work is running here, or None outside any job (or when it cannot be told which)."""
    code = _job_in_context.get()
    if code is None:
        with _jobs_lock:
            if len(_jobs_in_process) == 1:
                code = _jobs_in_process[0]
    return code


class LogContextFilter(logging.Filter):
    """Adds to each record the job it belongs to (`job`, None outside any job) and the process that wrote it
    (`process_label`: `garage run`'s name for it, if any, and the process's own name, such as ForkPoolWorker-1)."""

    def __init__(self):
        super().__init__()
        self.process_name = os.environ.get(PROCESS_NAME_VARIABLE, "")

    def filter(self, record: logging.LogRecord) -> bool:
        record.job = current_job()
        record.process_label = f"{self.process_name}/{record.processName}" if self.process_name else record.processName
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _GarageFormatter(logging.Formatter):
    """The fields both formats share. Only these: never a record's other attributes, where Django puts the request
    (django.request) and a caller could put anything, so no request body, header or setting reaches the logs
    unless a message itself says it."""

    def fields(self, record: logging.LogRecord) -> dict:
        return {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "process": getattr(record, "process_label", record.processName),
            "pid": record.process,
            "job": getattr(record, "job", None),
            "message": record.getMessage(),
            "exc_info": self.exception_text(record) or None,
        }

    def exception_text(self, record: logging.LogRecord) -> str:
        parts = []
        if record.exc_info:
            if not record.exc_text:  # computed once for all the handlers of a record, as logging.Formatter does
                record.exc_text = self.formatException(record.exc_info)
            parts.append(record.exc_text)
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts)


class TextFormatter(_GarageFormatter):
    """One line per record (a traceback follows on its own lines): time, level, [process:pid], job=code while a job
    runs, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        job = f" job={fields['job']}" if fields["job"] else ""
        line = (f"{fields['timestamp']} {fields['level']} [{fields['process']}:{fields['pid']}]{job} "
                f"{fields['logger']}: {fields['message']}")
        return f"{line}\n{fields['exc_info']}" if fields["exc_info"] else line


class JsonFormatter(_GarageFormatter):
    """One JSON object per line: timestamp, level, logger, process, pid, job (null outside a job), message and
    exc_info (the traceback as text, or null). ASCII only, so no odd byte in a message can break a line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record))


def _tag_with_job(event: dict, hint: dict) -> dict:
    job = current_job()
    if job:
        event.setdefault("tags", {})["job"] = job
    return event


def sentry_start(dsn: str) -> None:
    """Send unexpected errors of this process (web requests, Celery tasks, lines logged at ERROR) to Sentry, each
    tagged with its job's code. sentry-sdk is not a dependency: `pip install sentry-sdk` where it is wanted."""
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError:
        raise ImproperlyConfigured("SENTRY_DSN is set but sentry-sdk is not installed: run `pip install sentry-sdk`, "
                                   "or unset SENTRY_DSN.") from None
    # Nothing that may hold a secret or a user's data leaves the machine: no user details (PII), no request bodies
    # (passwords, uploaded documents), no local variables of the failing frames (decrypted provider keys).
    sentry_sdk.init(dsn=dsn, integrations=[DjangoIntegration(), CeleryIntegration()], send_default_pii=False,
                    max_request_body_size="never", include_local_variables=False, before_send=_tag_with_job)
