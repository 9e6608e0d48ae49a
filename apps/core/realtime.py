"""Publishing job updates to websocket clients. Messages are only updates: the database stays the truth."""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def job_group_name(code) -> str:
    return f"job-{code}"


def job_publish(*, job, event=None) -> None:
    """Send the job's current state (and the event that changed it) to everyone watching the job."""
    layer = get_channel_layer()
    message = {"type": "job.update", "job": job.snapshot(), "event": event.as_message() if event else None}
    try:
        async_to_sync(layer.group_send)(job_group_name(job.code), message)
    except Exception:  # A Redis hiccup must not fail the job: clients catch up from the database on reconnect.
        logger.warning("Could not publish an update of job %s", job.code, exc_info=True)
