"""The Celery application: the reaper's own queue and its schedule."""
from django.conf import settings

from garage.celery import CONTROL_QUEUE, app


def test_it_routes_the_reaper_to_the_control_queue():
    import workers.tasks  # noqa: F401  (registers the tasks)

    route = app.amqp.router.route({}, "core.reap_jobs")
    assert route["queue"].name == CONTROL_QUEUE == "control"
    assert app.amqp.router.route({}, "jobs.run")["queue"].name == "default"  # long work stays where it was


def test_it_drops_a_reaper_run_that_no_worker_took_within_one_interval():
    app.finalize()
    entry = app.conf.beat_schedule["reap dead jobs"]
    assert entry["task"] == "core.reap_jobs" and entry["schedule"] == settings.GARAGE_REAPER_INTERVAL
    assert entry["options"]["expires"] == settings.GARAGE_REAPER_INTERVAL
