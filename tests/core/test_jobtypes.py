"""Job types (apps.core.jobtypes): one per kind of work, run by the one task, followed by their `after`."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core.jobtypes import job_type, job_type_get
from apps.core.models import Job


def test_it_declares_one_job_type_for_every_kind_a_worker_runs():
    # A pipeline runs nothing itself: its steps are jobs of their own kinds.
    kinds = {kind for kind in Job.Kind.values if kind != Job.Kind.PIPELINE}
    assert {kind for kind in kinds if job_type_get(kind) is not None} == kinds
    assert job_type_get(Job.Kind.PIPELINE) is None


def test_it_names_what_follows_each_kind():
    follows = {kind: [follow.__name__ for follow in job_type_get(kind).after] for kind in (Job.Kind.TRAIN, Job.Kind.EVALUATE,
                                                                                          Job.Kind.GRPO, Job.Kind.EXTRACT)}
    assert follows[Job.Kind.TRAIN] == ["pipeline_advance", "heldout_evaluation_follow", "hub_push_follow"]
    assert follows[Job.Kind.EVALUATE] == ["pipeline_advance", "hub_push_follow"]
    assert follows[Job.Kind.GRPO] == ["grpo_benchmarks_follow"]
    assert follows[Job.Kind.EXTRACT] == ["pipeline_advance"]


def test_it_refuses_a_second_declaration_of_a_kind():
    with pytest.raises(ImproperlyConfigured, match="Two job types declare the kind 'sleep'"):
        job_type(Job.Kind.SLEEP)(lambda job, reporter: {})
