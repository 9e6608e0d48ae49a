"""The Celery application: queue `default` for light work, queue `gpu` for anything that loads a model, queue
`control` for the job system's own upkeep (the reaper and GPU dispatch), which must never wait behind either."""
import os
from pathlib import Path

from celery import Celery
from celery.signals import celeryd_init, setup_logging, worker_ready
from kombu import Queue

from apps.core.presence import WorkerPresence
from garage.env import var_dir
from workers.common.planner import record_device_when_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garage.settings")

CONTROL_QUEUE = "control"

app = Celery("garage", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("gpu"), Queue(CONTROL_QUEUE)]
# The reaper gets its own queue and worker: `default` runs pushes and generations that may take hours, and two of
# them would otherwise stop reaping and the dispatch of waiting GPU jobs for as long.
app.conf.task_routes = {"core.reap_jobs": {"queue": CONTROL_QUEUE}}
app.autodiscover_tasks(["workers"], related_name="tasks")
# Every worker records itself in Redis as alive on its queues, for /healthz and /metrics (apps.core.presence).
app.steps["consumer"].add(WorkerPresence)


@setup_logging.connect
def _log_through_django_settings(**kwargs):
    # Connected, this signal keeps Celery from replacing the root logger's handlers with its own format (and from
    # turning print output into log lines): workers, their pool processes and beat log through settings.LOGGING, as
    # the web process does, at LOG_LEVEL, each line of a job marked with its code (workers.jobs).
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


@worker_ready.connect
def _record_device(sender=None, **kwargs):
    # A worker of the `gpu` queue records its device when it starts, so that forms estimate a run before it is queued.
    record_device_when_ready(sender, folder=var_dir())


def worker_directory() -> Path:
    """The empty folder every worker runs in. Libraries read relative paths from the working directory (a dataset
    id such as `var/media` is also a folder name), so it must hold no user data; nested three deep under its own
    folder, so that no `a/b` id (`../..` included) reaches the uploads either."""
    path = var_dir() / "worker" / "home" / "cwd"
    path.mkdir(parents=True, exist_ok=True)
    return path


@celeryd_init.connect
def _work_from_an_empty_folder(**kwargs):
    # Before the pool forks, so that every process of the worker inherits it, however the worker was started.
    os.chdir(worker_directory())


@app.on_after_finalize.connect
def _schedule_reaper(sender, **kwargs):
    from django.conf import settings

    # A run not taken within one interval is dropped: the next one does the same work, and a control worker that was
    # down does not face a pile of them.
    sender.add_periodic_task(settings.GARAGE_REAPER_INTERVAL, sender.signature("core.reap_jobs"), name="reap dead jobs",
                             expires=settings.GARAGE_REAPER_INTERVAL)
