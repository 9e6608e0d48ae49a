"""/healthz: the database, Redis, the media storage and the workers of each queue, checked for load balancers without
signing in; and the presence of workers in Redis that it reads (apps.core.presence)."""
import socket
import time

import pytest
import redis
from django.conf import settings

from apps.core.health import celery_queues
from apps.core.presence import KEY_PREFIX, worker_presence_clear, worker_presence_record, workers_seen
from tests.live import celery_worker, free_port, wait_for

pytestmark = pytest.mark.django_db


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _unreachable_redis(settings):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.CELERY_BROKER_URL = settings.REDIS_URL = url
    return url


def _leaks(body: str) -> list[str]:
    """What a stranger must not learn from the report: host names, addresses, paths, URLs."""
    private = [socket.gethostname(), str(settings.VAR_DIR), str(settings.MEDIA_ROOT), settings.CELERY_BROKER_URL,
               "127.0.0.1", "redis://", "Traceback"]
    return [text for text in private if text and text in body]


@pytest.mark.worker
def test_it_answers_ok_when_every_queue_has_a_live_worker(worker, client):
    with celery_worker(queues="control", pool="solo", name="health-control"):
        response = client.get("/healthz")
        assert response.status_code == 200, response.content
        report = response.json()
        assert report["status"] == "ok"
        assert {name: check["status"] for name, check in report["checks"].items()} == {
            "database": "ok", "redis": "ok", "storage": "ok", "workers": "ok"}
        # The session's worker serves default, gpu and inference; the one started here serves control.
        assert set(report["checks"]["workers"]["queues"]) == {"default", "gpu", "inference", "control"}
        assert all(count >= 1 for count in report["checks"]["workers"]["queues"].values())
        assert report["checks"]["workers"]["missing"] == []
        assert all(0 <= check["seconds"] < settings.GARAGE_HEALTH_TIMEOUT for check in report["checks"].values()
                   if "seconds" in check)
        assert _leaks(response.content.decode()) == []
    # A worker that stops removes itself at once: no waiting for GARAGE_STALE_AFTER.
    report = client.get("/healthz").json()
    assert report["status"] == "degraded" and report["checks"]["workers"]["missing"] == ["control"]


def test_it_stays_up_but_degraded_while_a_queue_has_no_worker(client, settings):
    settings.GARAGE_INFERENCE_QUEUE = "inference-nobody-serves"
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["status"] == "degraded"
    assert report["checks"]["workers"]["status"] == "degraded"
    assert "inference-nobody-serves" in report["checks"]["workers"]["missing"]
    assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


def test_it_answers_503_when_a_required_queue_has_no_worker(client, settings):
    settings.GARAGE_HEALTH_REQUIRED_QUEUES = ["control", "gpus"]  # nobody serves control here; gpus is misspelt
    response = client.get("/healthz")
    assert response.status_code == 503
    workers = response.json()["checks"]["workers"]
    assert workers["status"] == "failed" and {"control", "gpus"} <= set(workers["missing"])
    assert workers["queues"]["gpus"] == 0
    assert response.json()["status"] == "failed"


def test_it_answers_503_at_once_when_redis_is_unreachable(client, settings):
    _unreachable_redis(settings)
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < settings.GARAGE_HEALTH_TIMEOUT
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "failed"
    assert {name: check["status"] for name, check in report["checks"].items()} == {
        "database": "ok", "redis": "failed", "storage": "ok", "workers": "failed"}
    assert _leaks(response.content.decode()) == []


def test_it_answers_within_its_timeout_when_redis_hangs(client, settings):
    """A Redis that accepts the connection and never answers (a listening socket nobody reads) holds nothing up."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.GARAGE_HEALTH_TIMEOUT = 0.5
        started = time.monotonic()
        response = client.get("/healthz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["status"] in ("failed", "timed out")
    assert elapsed < 1.5, elapsed


def test_it_answers_503_when_the_storage_is_not_writable(client, settings, tmp_path):
    # A media folder under a plain file: no folder can be made there, not even by root.
    (tmp_path / "a-file").write_text("not a folder")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["checks"]["storage"]["status"] == "failed"
    assert report["checks"]["database"]["status"] == report["checks"]["redis"]["status"] == "ok"
    assert str(tmp_path) not in response.content.decode()


def test_it_leaves_nothing_in_the_storage(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    assert client.get("/healthz").json()["checks"]["storage"]["status"] == "ok"
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_it_is_exempt_from_the_https_redirect(client, settings):
    """Load balancers probe the plain HTTP port and count a redirect as a failure; pages still redirect."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 301
    assert client.get("/").status_code == 301


# ---------------------------------------------------------------------------------------------- workers' presence


@pytest.fixture
def presence():
    """A client of the broker's Redis, and the queue names of this test only, emptied afterwards."""
    client = _client()
    queues = [f"health-test-{time.monotonic_ns()}-{n}" for n in range(2)]
    yield client, queues
    client.delete(*(KEY_PREFIX + queue for queue in queues))


def test_it_counts_workers_seen_recently_on_each_queue(presence):
    client, (first, second) = presence
    worker_presence_record(client=client, hostname="a@host", queues=[first, second])
    worker_presence_record(client=client, hostname="b@host", queues=[first])
    assert workers_seen(client=client, queues=[first, second]) == {first: 2, second: 1}
    worker_presence_record(client=client, hostname="a@host", queues=[first])  # seen again: still one worker
    assert workers_seen(client=client, queues=[first]) == {first: 2}
    worker_presence_clear(client=client, hostname="b@host", queues=[first])
    assert workers_seen(client=client, queues=[first, second]) == {first: 1, second: 1}


def test_it_forgets_a_worker_not_seen_for_longer_than_the_stale_limit(presence, settings):
    client, (queue, _) = presence
    seconds, _ = client.time()
    # A worker that crashed: its last record is older than GARAGE_STALE_AFTER, in Redis's clock.
    client.zadd(KEY_PREFIX + queue, {"crashed@host": seconds - settings.GARAGE_STALE_AFTER - 1})
    assert workers_seen(client=client, queues=[queue]) == {queue: 0}
    worker_presence_record(client=client, hostname="alive@host", queues=[queue])
    assert workers_seen(client=client, queues=[queue]) == {queue: 1}
    # Recording prunes what is stale, so the set does not grow with every worker that ever ran.
    assert client.zrange(KEY_PREFIX + queue, 0, -1) == [b"alive@host"]


@pytest.mark.worker
def test_it_sees_a_live_worker_on_each_of_its_queues(worker):
    """The session's worker (queues default, gpu, inference) records itself as it starts (garage.celery)."""
    client = _client()
    seen = wait_for(lambda: (lambda counts: counts if all(counts.values()) else None)(
        workers_seen(client=client, queues=["default", "gpu", "inference"])), 10, what="the worker's presence")
    assert set(seen) == {"default", "gpu", "inference"}
    assert set(celery_queues()) == {"default", "gpu", "inference", "control"}
