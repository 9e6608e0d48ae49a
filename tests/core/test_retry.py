"""Retry runs a failed or cancelled job again; a job made of steps (a pipeline) is never run again as a whole."""
import pytest
from django.core.exceptions import ValidationError

from apps.core.models import Job
from apps.core.services import job_create, job_finish, job_retry

pytestmark = pytest.mark.django_db


def failed_job(owner, **kwargs):
    job = job_create(owner=owner, kind=Job.Kind.SLEEP, start=False, **kwargs)
    job_finish(job=job, status=Job.Status.FAILED, error_message="It broke.")
    job.refresh_from_db()
    return job


def test_it_retries_a_failed_step_but_not_the_job_made_of_steps(alice, alice_client, alice_api):
    parent = job_create(owner=alice, kind=Job.Kind.PIPELINE, start=False)
    step = failed_job(alice, parent=parent)
    parent.refresh_from_db()
    assert parent.status == Job.Status.FAILED  # a step that did not succeed ends its parent

    with pytest.raises(ValidationError, match="retry the step that failed"):
        job_retry(job=parent)
    parent.refresh_from_db()
    assert parent.status == Job.Status.FAILED
    answer = alice_api.post(f"/api/v1/jobs/{parent.code}/retry/")
    assert answer.status_code == 400 and "retry the step that failed" in answer.json()["message"]
    page = alice_client.get(f"/jobs/{parent.code}/").content.decode()
    assert 'data-role="retry-form"' not in page
    followed = alice_client.post(f"/jobs/{parent.code}/retry/", follow=True).content.decode()
    assert "retry the step that failed" in followed

    # The step itself is retried, from its page or the API.
    assert 'data-role="retry-form"' in alice_client.get(f"/jobs/{step.code}/").content.decode()
    assert job_retry(job=step).status == Job.Status.QUEUED
