"""Publishing job updates to websocket clients. Messages are only updates: the database stays the truth."""
import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 5.0


def job_group_name(code) -> str:
    return f"job-{code}"


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
    """Send the job's current state (and the event that changed it) to everyone watching the job."""
    message = {"type": "job.update", "job": job.snapshot(), "event": event.as_message() if event else None}
    try:
        _publisher.run(get_channel_layer().group_send(job_group_name(job.code), message))
    except Exception:  # A Redis hiccup must not fail the job: clients catch up from the database on reconnect.
        logger.warning("Could not publish an update of job %s", job.code, exc_info=True)
