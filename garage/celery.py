"""The Celery application: queue `default` for light work, queue `gpu` for anything that loads a model."""
import os

from celery import Celery
from celery.signals import worker_ready
from kombu import Queue

from workers.planner import record_device_when_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garage.settings")

app = Celery("garage", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("gpu")]
app.autodiscover_tasks(["workers"], related_name="tasks")
# A worker of the `gpu` queue records its device when it starts, so that forms estimate a run before it is queued.
worker_ready.connect(record_device_when_ready)


@app.on_after_finalize.connect
def _schedule_reaper(sender, **kwargs):
    from django.conf import settings

    sender.add_periodic_task(settings.GARAGE_REAPER_INTERVAL, sender.signature("core.reap_jobs"), name="reap dead jobs")
