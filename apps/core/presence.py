"""Which Celery workers are alive, queue by queue.

Every worker records itself in Redis every GARAGE_HEARTBEAT_SECONDS from a step of its consumer (WorkerPresence,
installed by garage.celery), and removes itself when it stops; a worker not seen within GARAGE_STALE_AFTER seconds
counts as gone (it crashed or lost Redis). /healthz and /metrics read this with one Redis round trip, where asking
the workers themselves (Celery's inspect) would wait out a broadcast's whole timeout on every call.

One sorted set per queue, `garage:workers:<queue>`, maps each worker's node name to when it was last seen, in Redis's
own clock: workers on other machines and the web process compare times without trusting each other's clocks. The
node names stay in Redis: readers get counts only."""
from __future__ import annotations

import logging

import redis
from celery import bootsteps
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "garage:workers:"


def _now(client: redis.Redis) -> float:
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000


def worker_presence_record(*, client: redis.Redis, hostname: str, queues) -> None:
    """Record the worker `hostname` as alive on `queues` now, and forget workers of those queues gone for long."""
    now = _now(client)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zadd(KEY_PREFIX + queue, {hostname: now})
        pipe.zremrangebyscore(KEY_PREFIX + queue, "-inf", now - settings.GARAGE_STALE_AFTER)
    pipe.execute()


def worker_presence_clear(*, client: redis.Redis, hostname: str, queues) -> None:
    """Remove the worker `hostname` from `queues`: it is stopping, and must not count as alive meanwhile."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zrem(KEY_PREFIX + queue, hostname)
    pipe.execute()


def workers_seen(*, client: redis.Redis, queues) -> dict[str, int]:
    """How many workers of each queue were seen within GARAGE_STALE_AFTER seconds: one round trip. Raises a
    redis.RedisError (or OSError) when Redis does not answer."""
    pipe = client.pipeline(transaction=False)
    pipe.time()
    for queue in queues:
        pipe.zrange(KEY_PREFIX + queue, 0, -1, withscores=True)
    (seconds, microseconds), *seen = pipe.execute()
    since = seconds + microseconds / 1_000_000 - settings.GARAGE_STALE_AFTER
    return {queue: sum(1 for _, at in workers if at >= since) for queue, workers in zip(queues, seen)}


class WorkerPresence(bootsteps.StartStopStep):
    """A step of each worker's consumer: records the worker on the queues it consumes when it starts, again every
    GARAGE_HEARTBEAT_SECONDS from the consumer's timer (which keeps running while the pool's processes work, so a
    worker busy with an hours-long training still counts), and removes it when it stops. Redis being down is logged,
    never raised: the worker goes on, and is simply not counted until Redis is back."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        self.timer_entry = None
        self.hostname = ""
        self.queues: list[str] = []
        super().__init__(parent, **kwargs)

    def start(self, consumer):
        self.hostname = consumer.hostname
        self.queues = sorted(queue.name for queue in consumer.task_consumer.queues)
        self.record()
        self.timer_entry = consumer.timer.call_repeatedly(settings.GARAGE_HEARTBEAT_SECONDS, self.record)

    def stop(self, consumer):
        if self.timer_entry is not None:
            consumer.timer.cancel(self.timer_entry)
            self.timer_entry = None
        if self.queues:
            self._with_redis(worker_presence_clear, "remove itself")

    shutdown = stop

    def record(self):
        self._with_redis(worker_presence_record, "record itself")

    def _with_redis(self, action, what: str) -> None:
        # Short timeouts: the consumer's timer runs this beside the loop that receives messages.
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            action(client=client, hostname=self.hostname, queues=self.queues)
        except (redis.RedisError, OSError) as exc:
            logger.warning("Worker %s could not %s as alive in Redis (%s)", self.hostname, what, exc)
        finally:
            client.close()
