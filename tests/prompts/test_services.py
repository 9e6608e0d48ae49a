import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.core.models import Job
from apps.core.services import job_finish
from apps.prompts.models import OptimizedPrompt, PromptCandidate
from apps.prompts.jobs import optimized_prompt_execute
from apps.prompts.services import saved_prompt_from_run
from apps.providers.models import ExternalCallAudit
from apps.training.model_choices import default_model_choice
from tests.fixtures.models import STANDIN_ID, STANDIN_LABEL, make_tuned_model, standin_model  # noqa: F401
from tests.prompts.conftest import CAPITALS, make_run, version_for
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db


def test_it_queues_endpoint_runs_on_default_and_local_ones_on_gpu(alice, alice_version, alice_provider):
    run = make_run(alice, alice_version, alice_provider)
    assert run.job.queue == "default" and run.job.kind == "optimize_prompt"
    assert run.train_count == 8 and run.val_count == 2 and run.task_label.startswith("Lab box")
    local = make_run(alice, alice_version, alice_provider, task_model="local", task_local_model="tiny-gemma3")
    assert local.job.queue == "gpu" and local.task_local_model == "tiny-gemma3"


def test_it_names_runs_on_the_same_examples_apart(alice, alice_version, alice_provider):
    first = make_run(alice, alice_version, alice_provider)
    second = make_run(alice, alice_version, alice_provider, task_model="local", task_local_model="tiny-gemma3")
    assert first.name.startswith("Capitals v1 · run 1 · prompt for Lab box")
    assert second.name.startswith("Capitals v1 · run 2 · prompt for tiny test model · ")
    assert second.job.title == f"Prompt optimization: {second.name}"


def test_it_runs_stores_candidates_and_audits_every_request(alice, alice_version, alice_provider, chat_server):
    run = make_run(alice, alice_version, alice_provider)
    result = optimized_prompt_execute(run=run, reporter=RecordingReporter())
    run.refresh_from_db()
    assert result["best_val_score"] == 1.0 and "Answer in one word." in run.best_prompt
    assert run.result["calls_used"] == len(chat_server.chat_requests) <= run.budget
    candidates = list(run.candidates.all())
    assert candidates[0].status == PromptCandidate.Status.SEED and candidates[0].val_score == 0.0
    assert any(c.status == "accepted" and c.parent_index == 0 for c in candidates)
    assert ExternalCallAudit.objects.filter(owner=alice, job=run.job).count() == len(chat_server.chat_requests)
    with pytest.raises(ValidationError, match="not finished"):
        saved_prompt_from_run(run=run)
    job_finish(job=run.job, status=Job.Status.SUCCEEDED, result=result)
    prompt = saved_prompt_from_run(run=run)
    assert prompt.text == run.best_prompt and prompt.score == 1.0 and prompt.owner == alice
    with pytest.raises(ValidationError, match="no candidate #99"):
        saved_prompt_from_run(run=run, index=99)


def test_it_refuses_what_cannot_work(alice, bob, alice_version, alice_provider):
    with pytest.raises(ValidationError, match="at least 7"):
        make_run(alice, alice_version, alice_provider, budget=6)
    with pytest.raises(Http404):
        make_run(bob, None, alice_provider, source="gsm8k")
    with pytest.raises(ValidationError, match="own dataset"):
        make_run(bob, alice_version, alice_provider)
    with pytest.raises(ValidationError, match="minibatch size"):
        make_run(alice, alice_version, alice_provider, settings={"minibatch_size": 0})


def test_it_refuses_unknown_settings_and_bad_values_readably(alice, alice_version, alice_provider):
    with pytest.raises(ValidationError, match=r"Unknown setting 'minibatch'\. Allowed: minibatch_size, train_limit"):
        make_run(alice, alice_version, alice_provider, settings={"minibatch": 2})
    with pytest.raises(ValidationError, match="The temperature must be between 0.0 and 2.0"):
        make_run(alice, alice_version, alice_provider, settings={"temperature": "3"})
    with pytest.raises(ValidationError, match="The train limit must be a whole number"):
        make_run(alice, alice_version, alice_provider, settings={"train_limit": "all"})
    assert not OptimizedPrompt.objects.exists()


def test_it_takes_gsm8k_train_to_learn_and_test_to_validate(alice, alice_provider):
    run = make_run(alice, None, alice_provider, source="gsm8k", metric="numeric", budget=20,
                   settings={"train_limit": 5, "val_limit": 3})
    assert run.train_count == 5 and run.val_count == 3 and run.version is None


def test_it_optimizes_with_a_pypi_copy_as_the_local_task_model_offline(alice, alice_version, alice_provider,
                                                                      standin_model, chat_server):
    """The reported failure: a local "pypi/..." model reached from_pretrained as a Hub id and failed offline."""
    run = make_run(alice, alice_version, alice_provider, task_model="local", task_local_model=STANDIN_ID, budget=12,
                   settings={"minibatch_size": 2, "max_tokens": 4})
    assert run.job.queue == "gpu" and run.task_local_model == STANDIN_ID and STANDIN_LABEL in run.task_label
    result = optimized_prompt_execute(run=run, reporter=RecordingReporter())
    run.refresh_from_db()
    assert result["calls_used"] <= run.budget and run.candidates.filter(status=PromptCandidate.Status.SEED).exists()
    assert run.candidates.get(index=0).val_score is not None  # the local model answered every validation question
    assert all(r.messages[-1]["content"] not in CAPITALS for r in chat_server.chat_requests)  # only reflections left


def test_it_takes_the_owners_tuned_model_and_the_default_model(alice, bob, alice_version, alice_provider):
    tuned = make_tuned_model(alice, name="Capitals model")
    run = make_run(alice, alice_version, alice_provider, task_model="local", task_local_model=f"finetune:{tuned.code}")
    assert run.task_local_model == f"finetune:{tuned.code}" and run.task_label == "Capitals model (local)"
    blank = make_run(alice, alice_version, alice_provider, reflection_model="local", reflection_local_model="")
    assert blank.reflection_local_model == default_model_choice()
    with pytest.raises(Http404):
        make_run(bob, version_for(bob), alice_provider, task_model="local", task_local_model=f"finetune:{tuned.code}")
