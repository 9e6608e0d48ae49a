"""/metrics: Prometheus's view of requests, jobs, queues, workers and GPU slots, for staff and listed addresses."""
from datetime import timedelta
from ipaddress import ip_network

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.core.broker import queue_keys
from apps.core.models import Job
from apps.core.presence import worker_presence_clear, worker_presence_record
from garage.celery import CONTROL_QUEUE, app
from garage.env import env_networks
from tests.factories import UserFactory
from tests.live import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(UserFactory(email="operator@example.com", is_staff=True))
    return client


def scrape(client) -> dict:
    """{(name, ((label, value), ...)): value} of one scrape, which must succeed."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode()) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _job(owner, kind, status, queue="default", **fields) -> Job:
    return Job.objects.create(owner=owner, kind=kind, status=status, queue=queue, **fields)


# ---------------------------------------------------------------------------------------------- what it counts


def test_it_counts_jobs_by_kind_and_status(staff_client, alice, bob):
    for owner, kind, status in [(alice, "sleep", "queued"), (bob, "sleep", "queued"), (alice, "sleep", "failed"),
                                (alice, "extract", "succeeded"), (bob, "train", "running")]:
        _job(owner, kind, status)
    samples = scrape(staff_client)
    assert value(samples, "garage_jobs", kind="sleep", status="queued") == 2
    assert value(samples, "garage_jobs", kind="sleep", status="failed") == 1
    assert value(samples, "garage_jobs", kind="extract", status="succeeded") == 1
    assert value(samples, "garage_jobs", kind="train", status="running") == 1
    # Every other kind and status is there, as zero: a series that vanishes cannot be alerted on.
    jobs = {labels: count for (name, labels), count in samples.items() if name == "garage_jobs"}
    assert len(jobs) == len(Job.Kind.values) * len(Job.Status.values)
    assert sum(jobs.values()) == 5
    assert value(samples, "garage_metrics_source_up", source="database") == 1


def test_it_reports_how_long_recent_jobs_took(staff_client, alice):
    start = timezone.now() - timedelta(hours=1)
    for seconds in (10, 20, 30, 40):
        _job(alice, "train", "succeeded", started_at=start, finished_at=start + timedelta(seconds=seconds))
    # Neither a failure nor a job that never started counts.
    _job(alice, "train", "failed", started_at=start, finished_at=start + timedelta(seconds=9999))
    _job(alice, "extract", "succeeded", finished_at=start)
    samples = scrape(staff_client)
    assert value(samples, "garage_job_duration_seconds", kind="train", quantile="0.5") == 20
    assert value(samples, "garage_job_duration_seconds", kind="train", quantile="0.9") == 40
    assert value(samples, "garage_job_duration_seconds", kind="train", quantile="0.99") == 40
    assert value(samples, "garage_job_duration_sample_jobs", kind="train") == 4
    assert value(samples, "garage_job_duration_sample_jobs", kind="extract") is None


def test_it_counts_gpu_slots_in_use_as_the_dispatcher_does(staff_client, alice, bob, settings):
    settings.GARAGE_GPU_SLOTS = 3
    _job(alice, "train", "running", queue="gpu", celery_task_id="t1")
    _job(bob, "train", "queued", queue="gpu", celery_task_id="t2")  # handed to a GPU worker: holds its slot
    _job(bob, "train", "queued", queue="gpu")  # waiting for a slot
    _job(alice, "extract", "running")  # not a GPU job
    samples = scrape(staff_client)
    assert value(samples, "garage_gpu_slots") == 3
    assert value(samples, "garage_gpu_slots_in_use") == 2
    assert value(samples, "garage_gpu_jobs_waiting") == 1


def test_it_counts_requests_by_method_and_status_class(staff_client, client):
    before = scrape(staff_client)
    for _ in range(3):
        assert client.get("/accounts/login/").status_code == 200
    for _ in range(2):
        assert client.get("/no-such-page/").status_code == 404
    assert client.generic("BREW", "/accounts/login/").status_code == 405
    after = scrape(staff_client)

    def moved(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    # The first scrape is counted too, once it was answered.
    assert moved("garage_http_requests_total", method="GET", status="2xx") == 3 + 1
    assert moved("garage_http_requests_total", method="GET", status="4xx") == 2
    assert moved("garage_http_requests_total", method="other", status="4xx") == 1
    assert moved("garage_http_request_duration_seconds_count", method="GET") == 3 + 2 + 1
    assert moved("garage_http_request_duration_seconds_bucket", method="GET", le="+Inf") == 6
    assert moved("garage_http_request_duration_seconds_sum", method="GET") > 0


@pytest.fixture
def control_queue():
    """The control queue's lists in the broker, emptied afterwards: no worker serves it in these tests."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    client.delete(*queue_keys(CONTROL_QUEUE))


def test_it_reports_how_many_messages_wait_in_each_queue(staff_client, control_queue):
    waiting = value(scrape(staff_client), "garage_queue_messages", queue=CONTROL_QUEUE)
    app.send_task("core.reap_jobs", queue=CONTROL_QUEUE)
    app.send_task("core.reap_jobs", queue=CONTROL_QUEUE)
    app.send_task("core.reap_jobs", queue=CONTROL_QUEUE, priority=6)  # kept in a list of its own priority
    samples = scrape(staff_client)
    assert value(samples, "garage_queue_messages", queue=CONTROL_QUEUE) == waiting + 3
    assert {labels for name, labels in samples if name == "garage_queue_messages"} == {
        (("queue", queue),) for queue in ("default", "gpu", "inference", "control")}
    assert value(samples, "garage_metrics_source_up", source="redis") == 1


def test_it_counts_live_workers_of_each_queue(staff_client, control_queue):
    before = value(scrape(staff_client), "garage_workers", queue="gpu")
    hostnames = ["gpu0@metrics-test", "gpu1@metrics-test"]
    try:
        for hostname in hostnames:
            worker_presence_record(client=control_queue, hostname=hostname, queues=["gpu"])
        assert value(scrape(staff_client), "garage_workers", queue="gpu") == before + 2
    finally:
        for hostname in hostnames:
            worker_presence_clear(client=control_queue, hostname=hostname, queues=["gpu"])


def test_it_still_answers_when_redis_is_unreachable(staff_client, settings, alice):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    _job(alice, "sleep", "queued")
    samples = scrape(staff_client)
    assert value(samples, "garage_metrics_source_up", source="redis") == 0
    assert value(samples, "garage_queue_messages", queue="default") is None
    assert value(samples, "garage_jobs", kind="sleep", status="queued") == 1  # the database's part is all there


# ---------------------------------------------------------------------------------------------- who may read it


def test_it_answers_404_to_anonymous_visitors_and_to_users_who_are_not_staff(client, alice):
    assert client.get("/metrics").status_code == 404
    client.force_login(alice)
    assert client.get("/metrics").status_code == 404


def test_it_serves_listed_addresses_without_signing_in(settings):
    settings.GARAGE_METRICS_ALLOWED_IPS = [ip_network("10.1.2.0/24"), ip_network("192.0.2.9/32"),
                                           ip_network("2001:db8::/64")]
    for address in ("10.1.2.7", "192.0.2.9", "2001:db8::5", "::ffff:10.1.2.7"):
        response = Client(REMOTE_ADDR=address).get("/metrics")
        assert response.status_code == 200, address
        assert b"garage_jobs{" in response.content
    for address in ("10.1.3.7", "192.0.2.10", "2001:db8:1::5", "127.0.0.1", ""):
        assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 404, address


def test_it_serves_no_address_by_default():
    assert settings.GARAGE_METRICS_ALLOWED_IPS == []
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404


def test_it_reads_addresses_and_ranges_from_the_environment(monkeypatch):
    monkeypatch.setenv("GARAGE_METRICS_ALLOWED_IPS", " 10.0.0.5, 10.1.0.0/16,[::1],2001:db8::/48 ")
    assert env_networks("GARAGE_METRICS_ALLOWED_IPS") == [
        ip_network("10.0.0.5/32"), ip_network("10.1.0.0/16"), ip_network("::1/128"), ip_network("2001:db8::/48")]
    monkeypatch.setenv("GARAGE_METRICS_ALLOWED_IPS", "10.0.0.0/8,prometheus.internal")
    with pytest.raises(ValueError) as error:
        env_networks("GARAGE_METRICS_ALLOWED_IPS")
    assert str(error.value) == (
        "GARAGE_METRICS_ALLOWED_IPS has an entry that is neither an address nor an address range: "
        "'prometheus.internal'. Write addresses and ranges such as 10.0.0.5 and 10.1.0.0/16, separated by commas.")
