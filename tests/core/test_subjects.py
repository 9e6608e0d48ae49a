"""Each app declares what its jobs belong to (apps.core.subjects); core asks them, the most specific first."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core.subjects import job_subject_kind, job_subject_kinds


def test_the_apps_declare_their_subjects_most_specific_first():
    assert [kind.config_key for kind in job_subject_kinds()] == [
        "heldout_evaluation", "benchmark_run", "grpo_run", "reward_preview", "optimized_prompt", "finetune", "dataset",
        "document"]


def test_two_subjects_cannot_share_a_key_or_a_priority():
    def other(*, job, pk):
        return None

    with pytest.raises(ImproperlyConfigured, match="config key 'finetune'"):
        job_subject_kind("finetune", priority=999, find=other)
    with pytest.raises(ImproperlyConfigured, match="same priority 60"):
        job_subject_kind("something_else", priority=60, find=other)
    assert "something_else" not in [kind.config_key for kind in job_subject_kinds()]
