"""GRPO runs and reward previews: creation from each prompt source, readable refusals, the judge's endpoints and
audit, the reference recipe and the benchmarks it queues, and the preview job run in this process."""
import json

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.core.models import Job
from apps.core.services import job_finish
from apps.evaluation.models import BenchmarkRun
from apps.providers.models import ExternalCallAudit
from apps.rl.models import GrpoRun, RewardPreview
from apps.rl.jobs import (
    grpo_output_dir,
    grpo_prompts,
    grpo_recipe_benchmarks,
    grpo_run_execute,
    reward_preview_execute,
)
from apps.rl.services import (
    RECIPE_MODEL,
    grpo_recipe_create,
    grpo_run_create,
    grpo_settings,
    reward_preview_create,
    recipe_model,
)
from apps.training.jobs import model_choice_ref
from apps.training.model_choices import default_model_choice
from tests.fakes.chat_server import Reply
from tests.fixtures.models import STANDIN_ID, make_tuned_model, standin_model  # noqa: F401
from tests.rl.conftest import ALICE_KEY, GOOD, REWARDS, jsonl, version_for
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db


def test_it_creates_a_run_on_gsm8k_and_queues_its_gpu_job(alice):
    run = grpo_run_create(owner=alice, rewards=REWARDS, settings={"max_steps": "40", "beta": 0, "prompt_limit": 100})
    assert run.source == "gsm8k" and run.prompt_count == 100 and run.answer_count == 100
    # Without a model named, the server's default: its best real model (the tiny test model only without one).
    assert run.base_model == default_model_choice()
    assert run.name.startswith("GSM8K · run 1 · tiny test model LoRA GRPO · ") and run.job.title == f"GRPO: {run.name}"
    assert run.settings["max_steps"] == 40 and run.settings["beta"] == 0.0 and run.settings["checkpoint_every"] == 50
    assert [s["name"] for s in run.rewards] == ["format", "correct"] and run.rewards[0]["tags"] == ["reasoning", "answer"]
    job = run.job
    assert job.kind == Job.Kind.GRPO and job.queue == "gpu" and job.config == {"grpo_run": run.pk}
    prompts = grpo_prompts(run=run)
    assert len(prompts) == 100 and prompts[0]["answer"] == "72" and "####" in prompts[0]["solution"]


def test_it_creates_a_run_from_a_dataset_version(alice, alice_version):
    run = grpo_run_create(owner=alice, rewards=[{"type": "contains", "column": "answer"}], source="version",
                          version=alice_version, settings={"warmup_steps": 0})
    assert run.version == alice_version and run.prompt_count == 4 and "Capitals v1" in run.name
    assert grpo_prompts(run=run)[1] == {"prompt": "What is the capital of country 1?", "answer": "City 1"}


def test_it_stores_an_uploaded_prompts_file_under_a_uuid_name(alice):
    upload = jsonl({"prompt": "3 + 4?", "answer": 7}, "", {"question": "Say hi", "system": "Be kind."},
                   name="../../my prompts.jsonl")
    run = grpo_run_create(owner=alice, rewards=REWARDS, source="upload", prompts_file=upload)
    assert run.prompt_count == 2 and run.answer_count == 1 and run.prompts_filename == "my prompts.jsonl"
    assert run.prompts_file.name.startswith(f"grpo-prompts/{alice.pk}/") and "my prompts" not in run.prompts_file.name
    assert grpo_prompts(run=run) == [{"prompt": "3 + 4?", "answer": "7"}, {"prompt": "Say hi", "system": "Be kind."}]


@pytest.mark.parametrize("rows, message", [
    (["not json"], "Line 1 is not valid JSON"),
    ([{"prompt": "ok"}, [1, 2]], "Line 2 is not a JSON object"),
    ([{"answer": "7"}], "Line 1 needs a 'prompt'"),
    ([{"prompt": "ok", "answer": {"x": 1}}], "'answer' must be text or a number"),
    ([""], "The file has no prompts"),
])
def test_it_refuses_bad_prompt_files_naming_the_line(alice, rows, message):
    with pytest.raises(ValidationError) as error:
        grpo_run_create(owner=alice, rewards=REWARDS, source="upload", prompts_file=jsonl(*rows), settings={"warmup_steps": 0})
    assert message in " ".join(error.value.messages)
    assert not GrpoRun.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"rewards": []}, "Add at least one reward function"),
    ({"rewards": "[not json"}, "not valid JSON"),
    ({"rewards": [{"type": "format", "weight": 99}]}, "between -10.0 and 10.0"),
    ({"settings": {"num_generations": 1}}, "Num generations must be between 2"),
    ({"settings": {"learning_rate": "fast"}}, "Learning rate must be a number"),
    ({"settings": {"max_steps": 2.5}}, "Max steps must be a whole number"),
    ({"settings": {"backend": "magic"}}, "Unknown backend"),
    ({"settings": {"max_stepz": 3}}, "Unknown setting 'max_stepz'. Allowed: num_generations, "),
    ({"settings": {"save_merged": True}}, "Unknown setting 'save_merged'"),
    ({"settings": {"system_prompt": ["Be brief."]}}, "System prompt must be text."),
    ({"settings": {"warmup_steps": 5, "warmup_template": "no placeholder"}}, "must contain {answer}"),
    ({"method": "dpo"}, "Unknown method"),
    ({"base_model": "/etc/passwd"}, "model folders of this server"),
    ({"source": "version"}, "Choose one of your dataset versions"),
    ({"source": "upload"}, "Upload a JSONL file"),
])
def test_it_refuses_what_cannot_run_with_readable_errors(alice, kwargs, message):
    with pytest.raises(ValidationError) as error:
        grpo_run_create(owner=alice, **{"rewards": REWARDS, **kwargs})
    assert message in " ".join(error.value.messages)
    assert not GrpoRun.objects.exists()


def test_it_refuses_a_warm_up_without_reference_answers(alice):
    with pytest.raises(ValidationError, match="warm-up needs prompts with reference answers"):
        grpo_run_create(owner=alice, rewards=REWARDS, source="upload", prompts_file=jsonl({"prompt": "Hi"}),
                        settings={"warmup_steps": 5})


def test_it_refuses_someone_elses_version_and_provider(alice, bob, alice_provider):
    with pytest.raises(ValidationError, match="your own dataset versions"):
        grpo_run_create(owner=alice, rewards=REWARDS, source="version", version=version_for(bob))
    judge = [{"type": "judge", "rubric": "Good?", "provider": str(alice_provider.code)}]
    with pytest.raises(Http404):
        grpo_run_create(owner=bob, rewards=judge)
    assert grpo_run_create(owner=alice, rewards=judge).rewards[0]["provider"] == str(alice_provider.code)


def test_it_needs_an_endpoint_for_a_judge_on_the_site_default(alice, no_site_endpoint):
    with pytest.raises(ValidationError, match="no default chat endpoint"):
        grpo_run_create(owner=alice, rewards=[{"type": "judge", "rubric": "Good?"}])


def test_it_types_settings_and_keeps_defaults_for_blanks():
    values = grpo_settings({"max_steps": "", "temperature": "0.7", "system_prompt": "Think."})
    assert values["max_steps"] == 100 and values["temperature"] == 0.7 and values["system_prompt"] == "Think."
    with pytest.raises(ValidationError, match="Unknown setting 'unknown'"):  # a misspelt setting is not ignored
        grpo_settings({"unknown": 3})


def test_it_makes_the_reference_recipe_with_an_optional_judge(alice, alice_provider):
    run = grpo_recipe_create(owner=alice)
    # Gemma 3 1B Instruct where the server has it, else the server's default model.
    assert run.base_model == recipe_model() in (RECIPE_MODEL, default_model_choice()) and run.recipe == "gsm8k-reference"
    assert [s["name"] for s in run.rewards] == ["format", "correctness"] and run.prompt_count == 7473
    assert run.settings["system_prompt"].startswith("Respond in the following format") and run.settings["warmup_steps"] == 20
    judged = grpo_recipe_create(owner=alice, judge=True, provider=str(alice_provider.code), base_model="tiny-gemma3",
                                settings={"max_steps": 3})
    assert [s["type"] for s in judged.rewards] == ["format", "answer_match", "judge"]
    assert judged.rewards[2]["include_reference"] and judged.settings["max_steps"] == 3


def test_it_queues_benchmarks_of_base_and_tuned_after_the_recipe(alice, settings):
    run = grpo_recipe_create(owner=alice, base_model="tiny-gemma3", settings={"benchmark_limit": 5})
    run.metrics = {"merged": f"grpo/{run.code}/merged"}
    run.save(update_fields=["metrics"])
    # What follows a GRPO run that succeeded (its job type's `after`), as the worker ends it.
    job_finish(job=run.job, status=Job.Status.SUCCEEDED)
    run.refresh_from_db()
    base, tuned = run.base_benchmark, run.tuned_benchmark
    # The tiny model is built per run, so both benchmarks name the run's own folders, as any machine finds them.
    assert base.base_model == f"artifacts:grpo/{run.code}/base"
    assert tuned.base_model == f"artifacts:grpo/{run.code}/merged"
    (grpo_output_dir(run) / "merged").mkdir(parents=True)
    assert model_choice_ref(user=alice, choice=tuned.base_model).path == str(grpo_output_dir(run) / "merged")
    assert base.settings["limit"] == 5 and base.settings["prompt_template"] == "{question}"
    assert base.settings["system_prompt"] == run.settings["system_prompt"] and base.job.queue == "gpu"
    assert BenchmarkRun.objects.filter(owner=alice).count() == 2
    assert "Queued GSM8K benchmarks" in run.job.events.order_by("-id").values_list("data__line", flat=True)[0]
    real = grpo_recipe_create(owner=alice, base_model="someone/their-model")
    real.metrics = {"merged": None}
    grpo_recipe_benchmarks(run=real)
    assert real.base_benchmark.base_model == "someone/their-model" and real.tuned_benchmark is None


# --- previews ------------------------------------------------------------------------------------------------------

def test_it_previews_pasted_completions_at_once(alice):
    preview = reward_preview_create(owner=alice, rewards=REWARDS, samples=[
        {"prompt": "3 + 4?", "completion": GOOD, "answer": "7"}, {"prompt": "3 + 4?", "completion": "8", "answer": 7},
        {"completion": "<answer>7</answer>"}])
    assert preview.job is None and not preview.generated
    assert [r["total"] for r in preview.results] == [2.5, 0.0, 0.25]
    assert preview.results[2]["scores"] == {"format": 0.5, "correct": None}


@pytest.mark.parametrize("samples, message", [
    ([], "at least one sample"), ([{"completion": "x"}] * 9, "at most 8"), (["text"], "must be an object"),
    ([{"completion": ["a"]}], "'completion' must be text"),
])
def test_it_refuses_bad_preview_samples(alice, samples, message):
    with pytest.raises(ValidationError, match=message):
        reward_preview_create(owner=alice, rewards=REWARDS, samples=samples)


def test_it_asks_the_judge_of_a_preview_through_the_owners_provider_and_audits_it(alice, alice_provider, chat_server):
    # Answered by what is graded, not by arrival order: the judge sends its requests concurrently.
    chat_server.responder = lambda request: (Reply.text('{"score": 8, "reason": "right"}')
                                             if "Response to grade:\n7\n" in request.text else Reply.text("Looks fine to me."))
    judge = {"type": "judge", "rubric": "Is it right?", "provider": str(alice_provider.code)}
    preview = reward_preview_create(owner=alice, rewards=[judge], samples=[
        {"prompt": "3 + 4?", "completion": "7"}, {"prompt": "3 + 4?", "completion": "8"}])
    assert preview.results == [{"scores": {"judge": 0.8}, "total": 0.8}, {"scores": {"judge": None}, "total": 0}]
    assert preview.judge["judge_calls"] == 2 and preview.judge["judge_malformed"] == 1
    assert all(r.headers["authorization"] == f"Bearer {ALICE_KEY}" for r in chat_server.chat_requests)
    audits = ExternalCallAudit.objects.filter(owner=alice, purpose=ExternalCallAudit.Purpose.JUDGE)
    assert audits.count() == 2 and {a.provider for a in audits} == {"Judge box"}
    assert ALICE_KEY not in json.dumps(preview.judge) and ALICE_KEY not in json.dumps(preview.rewards)


def test_it_turns_a_broken_judge_into_a_readable_preview(alice, alice_provider, chat_server):
    chat_server.script(Reply.status(401))
    preview = reward_preview_create(owner=alice, rewards=[
        {"type": "judge", "rubric": "Right?", "provider": str(alice_provider.code), "on_failure": "zero"}],
        samples=[{"completion": "7"}])
    assert preview.results[0]["scores"] == {"judge": 0.0} and preview.judge["judge_failures"] == 1


@pytest.mark.timeout(120)
def test_it_generates_preview_completions_with_the_base_model_in_a_job(alice):
    from workers.common.evaluation import load_gsm8k

    prompts = [{"prompt": p["question"], "answer": p["answer"]} for p in load_gsm8k("train")[:5]]
    preview = reward_preview_create(owner=alice, rewards=REWARDS, base_model="tiny-gemma3", prompts=prompts, count=3,
                                    temperature=1.0, max_new_tokens=12)
    assert preview.generated and preview.job.kind == Job.Kind.GRPO and preview.job.queue == "gpu"
    assert preview.job.config == {"reward_preview": preview.pk} and len(preview.samples) == 3 and not preview.results
    assert preview.samples[0] == {"prompt": prompts[0]["prompt"], "completion": "", "answer": "72"}
    result = reward_preview_execute(preview=preview, reporter=RecordingReporter(), job=preview.job)
    preview.refresh_from_db()
    assert all(s["completion"] for s in preview.samples) and len(preview.results) == 3
    assert set(preview.results[0]["scores"]) == {"format", "correct"} and result["samples"] == 3
    with pytest.raises(ValidationError, match="no prompts"):
        reward_preview_create(owner=alice, rewards=REWARDS, base_model="tiny-gemma3", prompts=[])
    assert RewardPreview.objects.count() == 1


# --- the model GRPO starts from ------------------------------------------------------------------------------------

def test_it_names_runs_on_the_same_prompts_apart(alice):
    first, second = (grpo_run_create(owner=alice, rewards=REWARDS, settings={"prompt_limit": 10}) for _ in range(2))
    assert first.name.startswith("GSM8K · run 1 · ") and second.name.startswith("GSM8K · run 2 · ")
    assert second.job.title == f"GRPO: {second.name}"
    recipe = grpo_recipe_create(owner=alice, settings={"prompt_limit": 10})
    assert recipe.name.startswith("GSM8K reference recipe · run 1 · ")


TINY_GRPO = {"max_steps": 2, "num_generations": 2, "prompts_per_step": 1, "max_completion_length": 8,
             "warmup_steps": 0, "checkpoint_every": 0}
LENGTH = [{"type": "length", "min": 1, "max": 6}]


def test_it_trains_on_from_the_owners_tuned_model(alice, bob):
    tuned = make_tuned_model(alice, name="Valley model")
    with pytest.raises(Http404):
        grpo_run_create(owner=bob, rewards=LENGTH, base_model=f"finetune:{tuned.code}")
    run = grpo_run_create(owner=alice, rewards=LENGTH, source="upload", base_model=f"finetune:{tuned.code}",
                          prompts_file=jsonl({"prompt": "Where does item1 live?", "answer": "Rome"}), settings=TINY_GRPO)
    assert run.base_model == f"finetune:{tuned.code}"
    assert run.name.startswith("prompts.jsonl · run 1 · Valley model LoRA GRPO · ")
    grpo_run_execute(run=run, reporter=RecordingReporter())
    run.refresh_from_db()
    # The tuned model's adapter was folded into its base, once, and GRPO trained from there.
    assert run.metrics["train_steps"] == 2 and (grpo_output_dir(run) / "base" / "config.json").is_file()
    assert run.metrics["policy_base"] == f"grpo/{run.code}/base"
    run.recipe, run.metrics["merged"] = "gsm8k-reference", None
    grpo_recipe_benchmarks(run=run)  # the base benchmark asks the tuned model it started from
    assert run.base_benchmark.finetune == tuned and run.base_benchmark.base_model == ""


def test_it_trains_from_a_pypi_copy(alice, standin_model, settings):
    run = grpo_run_create(owner=alice, rewards=LENGTH, source="upload", base_model=STANDIN_ID,
                          prompts_file=jsonl({"prompt": "Where does item1 live?", "answer": "Rome"}),
                          settings={**TINY_GRPO, "max_steps": 1})
    grpo_run_execute(run=run, reporter=RecordingReporter())
    run.refresh_from_db()
    # Resolved as every feature resolves it: the converted folder in the server's model folder, not the Hub.
    assert run.metrics["train_steps"] == 1
    assert run.metrics["policy_base"] == str(settings.GARAGE_MODELS_DIR / "pypi--standin-model")


def test_it_previews_completions_of_a_pypi_copy_and_a_tuned_model(alice, standin_model):
    tuned = make_tuned_model(alice, base_model=STANDIN_ID, name="On the copy")
    for model in (STANDIN_ID, f"finetune:{tuned.code}"):
        preview = reward_preview_create(owner=alice, rewards=LENGTH, base_model=model, count=1, max_new_tokens=4,
                                        prompts=[{"prompt": "Where does item1 live?", "answer": "Rome"}])
        reward_preview_execute(preview=preview, reporter=RecordingReporter())
        preview.refresh_from_db()
        assert len(preview.results) == 1 and "completion" in preview.samples[0]
