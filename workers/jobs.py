"""The Celery side of the job system: running a job by its kind, which claims its row atomically, beats a heartbeat
while it runs, and always ends in exactly one final status."""
import logging
import threading
import time
import traceback
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection

from apps.core.models import Job, JobEvent
from apps.core.jobtypes import job_type_get
from apps.core.services import job_claim, job_event_add, job_finish, job_heartbeat
from apps.training.artifacts import artifact_checkpoint_upload
from garage.logs import job_logging
from workers.common.errors import Cancelled, ReadableError

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on our side while running this job. An administrator can see the details."


class JobReporter:
    """Reporter (workers.engine.reporting.Reporter) that writes job events and publishes them to the websocket.

    A pipeline step also reports to its parent job, its progress mapped into the step's span of the whole."""

    PROGRESS_INTERVAL = 0.2  # seconds between two progress events; phases, logs and metrics are never dropped
    CANCEL_CHECK_INTERVAL = 0.1  # one indexed read; a cancel then stops training within a step or two

    def __init__(self, job: Job):
        self.job = job
        self.parent = job.parent
        self.span = job.config.get("pipeline_span", [0.0, 1.0])
        self._last_progress = 0.0
        self._last_cancel_check = 0.0
        self._stop = False

    def _emit(self, type, data, **fields):
        job_event_add(job=self.job, type=type, data=data, **fields)
        if self.parent is not None:
            if "progress" in fields:
                start, end = self.span
                fields = {**fields, "progress": start + (end - start) * fields["progress"]}
                data = {**data, "fraction": fields["progress"]}
            job_event_add(job=self.parent, type=type, data=data, **fields)

    def phase(self, name, message=""):
        self._emit(JobEvent.Type.PROGRESS, {"phase": name, "message": message}, phase=name, message=message[:300])

    def progress(self, fraction, message=""):
        now = time.monotonic()
        fraction = max(0.0, min(1.0, float(fraction)))
        if fraction < 1.0 and now - self._last_progress < self.PROGRESS_INTERVAL:
            return
        self._last_progress = now
        fields = {"progress": fraction}
        if message:
            fields["message"] = message[:300]
        self._emit(JobEvent.Type.PROGRESS, {"fraction": fraction, "message": message}, **fields)

    def log(self, line):
        self._emit(JobEvent.Type.LOG, {"line": str(line)[:2000]})

    def metric(self, **values):
        self._emit(JobEvent.Type.METRIC, values)

    def checkpoint(self, step, folder):
        """A resumable state was saved: the reaper may re-queue this job if its worker dies from here on. With a
        bucket it is copied there first, so that any worker resumes from it."""
        line = f"Checkpoint saved at step {step}"
        try:
            artifact_checkpoint_upload(folder=Path(folder))
        except Exception:
            # A bucket that fails now must not end hours of training: the run goes on, and a resume on another worker
            # starts from the last checkpoint that reached the bucket.
            logger.warning("Checkpoint at step %s of job %s did not reach the bucket", step, self.job.code, exc_info=True)
            line += " on this worker only: the bucket did not take it"
        self._emit(JobEvent.Type.LOG, {"line": line, "checkpoint_step": step})

    def should_stop(self):
        now = time.monotonic()
        if not self._stop and now - self._last_cancel_check >= self.CANCEL_CHECK_INTERVAL:
            self._last_cancel_check = now
            self._stop = Job.objects.filter(pk=self.job.pk, cancel_requested_at__isnull=False).exists()
        return self._stop


class Heartbeat:
    """Touches the job's heartbeat from a side thread, so a long step does not look like a dead worker."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self):
        try:
            while not self._done.wait(settings.GARAGE_HEARTBEAT_SECONDS):
                try:
                    job_heartbeat(job_id=self.job_id)
                except Exception:
                    logger.warning("Heartbeat of job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(timeout=5)


def job_run(*, job_id: int, task_id: str, worker: str) -> None:
    """Run one job by its kind (apps.core.jobtypes): claim its row, beat its heartbeat, and end it in exactly one
    final status; what follows the job (its type's `after`) runs as it ends (apps.core.services.job_finish)."""
    job = job_claim(job_id=job_id, task_id=task_id, worker=worker)
    if job is None:
        logger.info("Job %s was not claimable (cancelled, retried or already running)", job_id)
        return
    # Every line logged from here to the job's end, what follows it included, carries the job's code.
    with job_logging(str(job.code)), Heartbeat(job.pk):
        try:
            job_type = job_type_get(job.kind)
            if job_type is None:
                raise RuntimeError(f"No job type declares the kind '{job.kind}'")
            result = job_type.run(job, JobReporter(job))
        except Cancelled:
            job_finish(job=job, status=Job.Status.CANCELLED)
        except ReadableError as exc:
            job_finish(job=job, status=Job.Status.FAILED, error=traceback.format_exc(), error_message=str(exc))
        except SoftTimeLimitExceeded:
            job_finish(job=job, status=Job.Status.FAILED, error=traceback.format_exc(),
                       error_message="The job took longer than its time limit and was stopped.")
        except Exception:
            logger.exception("Job %s failed", job.code)
            job_finish(job=job, status=Job.Status.FAILED, error=traceback.format_exc(), error_message=INTERNAL_ERROR)
        else:
            job_finish(job=job, status=Job.Status.SUCCEEDED, result=result or {})
