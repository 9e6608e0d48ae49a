"""The Celery application: queue `default` for light work, queue `gpu` for anything that loads a model."""
import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garage.settings")

app = Celery("garage", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("default"), Queue("gpu")]
app.autodiscover_tasks(["workers"], related_name="tasks")


@app.on_after_finalize.connect
def _schedule_reaper(sender, **kwargs):
    from django.conf import settings

    sender.add_periodic_task(settings.GARAGE_REAPER_INTERVAL, sender.signature("core.reap_jobs"), name="reap dead jobs")
