"""Two steps of one pipeline ending at the same moment, in two threads with their own database connections (run it
with DATABASE_URL=postgres://... for PostgreSQL's row locks; on SQLite every transaction takes the write lock)."""
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.core.models import Job
from apps.training.pipeline import pipeline_advance, pipeline_start

pytestmark = pytest.mark.django_db(transaction=True)


def _at_once(*calls):
    """Run the calls in threads released together; re-raise the first error."""
    barrier, errors = threading.Barrier(len(calls)), []

    def run(call):
        try:
            barrier.wait(timeout=10)
            call()
        except Exception as exc:  # noqa: BLE001  (reported to the test below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]


def test_it_starts_generation_once_when_two_extractions_end_together(alice, settings):
    settings.GARAGE_GPU_SLOTS = 0  # nothing here runs: only the steps' rows matter
    for attempt in range(5):  # the race is narrow: several pipelines, so that it shows before the fix
        files = [SimpleUploadedFile(name, b"The capital of the valley is Eldhavn.") for name in ("a.txt", "b.txt")]
        pipeline = pipeline_start(owner=alice, files=files, name=f"Valley {attempt}", base_model="tiny-gemma3")
        extractions = list(pipeline.children.order_by("id"))
        Job.objects.filter(pk__in=[job.pk for job in extractions]).update(status=Job.Status.SUCCEEDED)
        # What follows each extraction once its row is final (its job type's `after`): the pipeline moves on.
        _at_once(*(lambda pk=job.pk: pipeline_advance(Job.objects.get(pk=pk)) for job in extractions))
        pipeline.refresh_from_db()
        assert pipeline.status == Job.Status.RUNNING, pipeline.error_message
        assert pipeline.children.filter(kind=Job.Kind.GENERATE).count() == 1
