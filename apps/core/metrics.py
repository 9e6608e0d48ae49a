"""What /metrics exposes to Prometheus.

Requests are counted and timed as they pass (http_metrics_middleware), in this process's memory: each web process
counts its own. Everything else is read when Prometheus scrapes (JobsCollector), from the database and Redis, so any
web process gives the same answer: jobs by kind and status, messages waiting in each Celery queue, live workers of
each queue, GPU slots in use, and how long recent jobs took. Each read is bounded (aggregates, or a fixed number of
rows), and a source that does not answer is reported as down (garage_metrics_source_up) rather than failing the
scrape."""
from __future__ import annotations

import ipaddress
import logging
import time
from collections import defaultdict

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

from apps.core.broker import BROKER_ERRORS, queue_depths
from apps.core.health import celery_queues, redis_client
from apps.core.models import Job
from apps.core.presence import workers_seen
from apps.core.selectors import GPU_QUEUE, gpu_active_per_user

logger = logging.getLogger(__name__)

# No `_created` series beside each counter and histogram: Prometheus does not need them, and they double the output.
disable_created_metrics()

# Methods outside this set are counted as "other": a client can send any word as a method, and each would otherwise
# make a new series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter("garage_http_requests", "HTTP requests answered, by method and status class (2xx, 4xx, ...).",
                        ["method", "status"])
HTTP_DURATION = Histogram("garage_http_request_duration_seconds",
                          "Time from a request's arrival to its response (a streamed body's later parts not included).",
                          ["method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

# How long recent jobs took: the quantiles of the last JOB_DURATION_WINDOW jobs that succeeded (newest first by id,
# which the primary key's index walks without reading the rest of the table).
JOB_DURATION_WINDOW = 1000
JOB_DURATION_QUANTILES = (0.5, 0.9, 0.99)
# How long one read of Redis may take during a scrape.
REDIS_TIMEOUT = 2.0


def _observe(request, response, started: float) -> None:
    method = request.method if request.method in METHODS else "other"
    HTTP_REQUESTS.labels(method=method, status=f"{response.status_code // 100}xx").inc()
    HTTP_DURATION.labels(method=method).observe(time.perf_counter() - started)


@sync_and_async_middleware
def http_metrics_middleware(get_response):
    if iscoroutinefunction(get_response):
        async def middleware(request):
            started = time.perf_counter()
            response = await get_response(request)
            _observe(request, response, started)
            return response
    else:
        def middleware(request):
            started = time.perf_counter()
            response = get_response(request)
            _observe(request, response, started)
            return response
    return middleware


def metrics_address_allowed(address: str | None) -> bool:
    """Whether a client at `address` may scrape without signing in: it lies in GARAGE_METRICS_ALLOWED_IPS. An IPv4
    client reaching a dual-stack server shows as ::ffff:a.b.c.d, and is checked as a.b.c.d."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False  # no address (a Unix socket), or not one
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip.version == network.version and ip in network for network in settings.GARAGE_METRICS_ALLOWED_IPS)


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of an ordered, non-empty list."""
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class JobsCollector:
    """The job system's state, read at each scrape."""

    def describe(self):
        # Names only, so that registering this collector reads nothing (Prometheus's client would call collect()).
        return [GaugeMetricFamily(name, "") for name in (
            "garage_jobs", "garage_job_duration_seconds", "garage_job_duration_sample_jobs", "garage_gpu_slots",
            "garage_gpu_slots_in_use", "garage_gpu_jobs_waiting", "garage_queue_messages", "garage_workers",
            "garage_metrics_source_up")]

    def collect(self):
        up = GaugeMetricFamily("garage_metrics_source_up", "Whether this scrape could read the source (1) or not (0).",
                               labels=["source"])
        try:
            yield from self._from_database()
            up.add_metric(["database"], 1)
        except DatabaseError:
            logger.warning("Metrics could not read the database", exc_info=True)
            up.add_metric(["database"], 0)
        try:
            yield from self._from_redis()
            up.add_metric(["redis"], 1)
        except BROKER_ERRORS:
            logger.warning("Metrics could not read Redis", exc_info=True)
            up.add_metric(["redis"], 0)
        yield up

    def _from_database(self):
        """Read everything first and yield after: a failure half-way must not leave half the families yielded."""
        counts = {(row["kind"], row["status"]): row["n"]
                  for row in Job.objects.order_by().values("kind", "status").annotate(n=Count("id"))}
        durations = defaultdict(list)
        recent = (Job.objects.filter(status=Job.Status.SUCCEEDED, started_at__isnull=False, finished_at__isnull=False)
                  .order_by("-id").values_list("kind", "started_at", "finished_at")[:JOB_DURATION_WINDOW])
        for kind, started_at, finished_at in recent:
            durations[kind].append(max(0.0, (finished_at - started_at).total_seconds()))
        in_use = sum(gpu_active_per_user().values())
        waiting = Job.objects.filter(queue=GPU_QUEUE, status=Job.Status.QUEUED, celery_task_id="").count()

        # Every kind and status, zeros included: a series that vanishes cannot be alerted on.
        jobs = GaugeMetricFamily("garage_jobs", "Jobs by kind and status.", labels=["kind", "status"])
        for kind in Job.Kind.values:
            for status in Job.Status.values:
                jobs.add_metric([kind, status], counts.get((kind, status), 0))
        yield jobs
        quantiles = GaugeMetricFamily(
            "garage_job_duration_seconds",
            f"Run time (start to finish) of the last {JOB_DURATION_WINDOW} jobs that succeeded, by kind: quantiles.",
            labels=["kind", "quantile"])
        sample = GaugeMetricFamily("garage_job_duration_sample_jobs",
                                   "How many of those jobs each kind's quantiles are taken over.", labels=["kind"])
        for kind, seconds in sorted(durations.items()):
            seconds.sort()
            for q in JOB_DURATION_QUANTILES:
                quantiles.add_metric([kind, str(q)], _quantile(seconds, q))
            sample.add_metric([kind], len(seconds))
        yield quantiles
        yield sample
        yield GaugeMetricFamily("garage_gpu_slots", "GPU jobs that may run at once (GARAGE_GPU_SLOTS).",
                                value=settings.GARAGE_GPU_SLOTS)
        yield GaugeMetricFamily("garage_gpu_slots_in_use", "GPU jobs running or handed to a GPU worker.", value=in_use)
        yield GaugeMetricFamily("garage_gpu_jobs_waiting", "GPU jobs waiting for a free slot (not yet sent to a worker).",
                                value=waiting)

    def _from_redis(self):
        client = redis_client(timeout=REDIS_TIMEOUT)
        try:
            depths = queue_depths(client=client, queues=celery_queues())
            seen = workers_seen(client=client, queues=celery_queues())
        finally:
            client.close()
        messages = GaugeMetricFamily("garage_queue_messages", "Messages waiting in each Celery queue of the broker.",
                                     labels=["queue"])
        workers = GaugeMetricFamily("garage_workers", "Workers of each queue seen within GARAGE_STALE_AFTER seconds.",
                                    labels=["queue"])
        for queue in celery_queues():
            messages.add_metric([queue], depths[queue])
            workers.add_metric([queue], seen[queue])
        yield messages
        yield workers


REGISTRY.register(JobsCollector())
