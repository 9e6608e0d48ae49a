"""Publishing job updates to websocket clients. Messages are only updates: the database stays the truth."""
import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

from apps.core.models import JobEvent
from apps.core.selectors import AHEAD_SHOWN, job_snapshot, queue_line, waiting_state

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 5.0


def job_group_name(code) -> str:
    return f"job-{code}"


def user_jobs_group_name(user_id) -> str:
    """The group of everyone watching a user's list of jobs (the dashboard): their top-level jobs' state changes."""
    return f"user-jobs-{user_id}"


# Events that change what a list of jobs shows; metrics and log lines go only to the job's own group.
LIST_EVENT_TYPES = frozenset({JobEvent.Type.STATUS, JobEvent.Type.PROGRESS})


class _PublisherLoop:
    """One event loop per process, kept in a daemon thread, for group_send from synchronous code.

    async_to_sync would start a new loop (and so a new Redis connection) for every event; a kept loop
    reuses the channel layer's connection, which halves the latency and keeps training steps unblocked.
    It is created lazily and again after a fork, so each Celery pool process gets its own."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop = None
        self._pid = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(target=self._loop.run_forever, name="channel-publisher", daemon=True).start()
            return self._loop

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop()).result(timeout=PUBLISH_TIMEOUT)


_publisher = _PublisherLoop()


def job_publish(*, job, event=None) -> None:
    """Send the job's current state (and the event that changed it) to everyone watching the job and, when a top-level
    job's status or progress changed, to everyone watching its owner's list of jobs."""
    message = {"type": "job.update", "job": job_snapshot(job=job), "event": event.as_message() if event else None}
    groups = [job_group_name(job.code)]
    if job.parent_id is None and (event is None or event.type in LIST_EVENT_TYPES):
        groups.append(user_jobs_group_name(job.owner_id))
    try:
        _publisher.run(_group_send(groups, message))
    except Exception:  # A Redis hiccup must not fail the job: clients catch up from the database on reconnect.
        logger.warning("Could not publish an update of job %s", job.code, exc_info=True)


async def _group_send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    for group in groups:
        await layer.group_send(group, message)


def queue_publish(*, queue: str) -> None:
    """Tell the jobs waiting in `queue` their new place in line, after the line moved (a job joined, left, started or
    ended): one update per waiting job, only on such moves and never on progress, and only to the jobs whose text can
    have changed (those further back than AHEAD_SHOWN read "more than ..." before and after)."""
    messages = [(job_group_name(job.code),
                 {"type": "job.update",
                  "job": job_snapshot(job=job, waiting=waiting_state(position=position, reason=reason)),
                  "event": None})
                for job, position, reason in queue_line(queue=queue) if position is None or position <= AHEAD_SHOWN + 2]

    async def send_all():
        layer = get_channel_layer()
        await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))

    if not messages:
        return
    try:
        _publisher.run(send_all())
    except Exception:  # as in job_publish: pages catch up from the database when they connect again
        logger.warning("Could not publish the new places in line of queue %s", queue, exc_info=True)
