"""Baseline tasks for the latency benchmarks, loaded into the benchmark's Celery worker with `-I bench.probes`.

They use the same Celery app, broker, worker and task settings as the job tasks, but none of the job system
(no database row, no claim, no reporter), so that the benchmark can print our figures beside the bare ones."""
import asyncio
import json
import os
import threading
import time

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from garage.celery import app

_clients: dict[int, redis.Redis] = {}


def _redis() -> redis.Redis:
    """One client per worker process: prefork children must not share the parent's socket."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = redis.Redis.from_url(settings.REDIS_URL)
    return _clients[pid]


@app.task(name="bench.noop", ignore_result=True)
def noop(key: str) -> None:
    """Note the moment the task body starts (the timestamp comes first) and hand it back through a Redis list."""
    started = time.time()
    _redis().rpush(key, repr(started))


@app.task(name="bench.publish", ignore_result=True)
def publish(channel: str, count: int, interval: float) -> None:
    """Raw Redis PUBLISH on one kept-open connection: the floor of any worker → web push."""
    client = _redis()
    for i in range(count):
        time.sleep(interval)
        client.publish(channel, json.dumps({"i": i, "sent_at": time.time()}))


@app.task(name="bench.group_send", ignore_result=True)
def group_send(group: str, count: int, interval: float, kept_loop: bool = False) -> None:
    """A bare channels group_send from the worker. By default it is called exactly as
    apps.core.realtime.job_publish calls it (async_to_sync, which starts a thread, an event loop and a new
    Redis connection per call); with kept_loop=True it runs on one event loop kept for the whole task, to show
    what publishing from a long-lived loop would cost instead."""
    layer = get_channel_layer()
    if not kept_loop:
        for i in range(count):
            time.sleep(interval)
            async_to_sync(layer.group_send)(group, {"type": "bench.message", "i": i, "sent_at": time.time()})
        return
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bench-loop", daemon=True)
    thread.start()
    try:
        for i in range(count):
            time.sleep(interval)
            message = {"type": "bench.message", "i": i, "sent_at": time.time()}
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=10)
    finally:
        asyncio.run_coroutine_threadsafe(layer.close_pools(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
