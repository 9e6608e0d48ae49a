"""The job system's two dealings with the broker (Redis): sending a job's message, and asking which job messages
it still holds. A job's row stays the truth: a message that cannot be sent, or that is lost, leaves the job queued
for the reaper (apps.core.services.jobs_resend_lost) to send again under a new task id."""
from __future__ import annotations

import json
import logging

import redis
from django.conf import settings
from kombu.exceptions import OperationalError
from kombu.transport.redis import PRIORITY_STEPS, Channel

logger = logging.getLogger(__name__)

RUN_TASK = "jobs.run"  # the one task that runs any job by its kind (workers.tasks.run_job)
# What a broker that is down or unreachable raises: kombu wraps connection errors when publishing; the Redis client
# raises its own when asked directly.
BROKER_ERRORS = (OperationalError, redis.RedisError, OSError)


def job_message_send(*, job_id: int, kind: str, queue: str, task_id: str) -> bool:
    """Hand one job's message to the broker. Returns False, after logging why, when the broker does not take it:
    the caller leaves the job queued, and the reaper sends it again."""
    from garage.celery import app

    try:
        # A kind's time limit travels with its message: the worker's pool stops the job once it is spent.
        app.send_task(RUN_TASK, args=[job_id], task_id=task_id, queue=queue,
                      soft_time_limit=settings.GARAGE_JOB_TIME_LIMITS.get(kind))
    except BROKER_ERRORS as exc:
        logger.warning("The broker did not take job %s's message (%s: %s); the reaper will send it again",
                       job_id, type(exc).__name__, exc)
        return False
    return True


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold one queue's waiting messages: kombu's Redis transport keeps one list per priority
    step, the plain queue name for the default priority."""
    return [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]


def queue_depths(*, client: redis.Redis, queues) -> dict[str, int]:
    """How many messages wait in each of `queues` (delivered but unacknowledged ones are not counted): one round trip.
    Raises one of BROKER_ERRORS when Redis does not answer."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in queue_keys(queue):
            pipe.llen(key)
    lengths = iter(pipe.execute())
    return {queue: sum(next(lengths) for _ in PRIORITY_STEPS) for queue in queues}


def _message_task_id(raw: bytes, unacked: bool) -> str | None:
    try:
        message = json.loads(raw)
        return (message[0] if unacked else message)["headers"]["id"]
    except (ValueError, LookupError, TypeError):
        return None  # not a Celery task message (nothing of ours)


def task_ids_in_broker(queues) -> set[str]:
    """Ids of the task messages the broker still holds: waiting in line in one of `queues`, or delivered to a worker
    and not yet acknowledged (tasks acknowledge late). Kombu's Redis transport keeps each queue as a list (one per
    priority step) and unacknowledged messages in one hash. Raises one of BROKER_ERRORS when Redis does not answer."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in queue_keys(queue):
            pipe.lrange(key, 0, -1)
    pipe.hvals(Channel.unacked_key)
    *waiting, unacked = pipe.execute()
    ids = {_message_task_id(raw, unacked=False) for messages in waiting for raw in messages}
    ids |= {_message_task_id(raw, unacked=True) for raw in unacked}
    ids.discard(None)
    return ids
