"""Creating and executing benchmark runs (the engine with a local generate function)."""
import pytest
from django.core.exceptions import ValidationError

from apps.core.models import Job
from apps.evaluation.models import BenchmarkRun
from apps.evaluation.jobs import benchmark_model_ref, benchmark_run_execute
from apps.evaluation.services import benchmark_run_create, benchmark_settings
from apps.training.models import FineTune
from workers.common.errors import ReadableError
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db


def test_it_queues_a_benchmark_job_on_the_gpu_queue(alice):
    run = benchmark_run_create(owner=alice, benchmark="gsm8k", base_model="tiny-gemma3", settings={"limit": "3"})
    assert run.job.kind == Job.Kind.BENCHMARK and run.job.queue == "gpu" and run.job.status == Job.Status.QUEUED
    assert run.job.config == {"benchmark_run": run.pk} and run.job.owner == alice
    assert run.settings["limit"] == 3 and run.settings["temperature"] == 0.0
    assert "{question}" in run.settings["prompt_template"]  # the default prompt, stored as used
    assert str(run) == "GSM8K: tiny-gemma3" and run.model_label == "tiny-gemma3"


def test_it_benchmarks_a_finished_finetune_of_the_owner_only(alice, bob, alice_finetune):
    run = benchmark_run_create(owner=alice, benchmark="gsm8k", finetune=alice_finetune)
    assert run.finetune == alice_finetune and run.model_label == "Alice's maths model" and run.base_model == ""
    with pytest.raises(ValidationError, match="your own"):
        benchmark_run_create(owner=bob, benchmark="gsm8k", finetune=alice_finetune)
    FineTune.objects.filter(pk=alice_finetune.pk).update(artifact="")
    alice_finetune.refresh_from_db()
    with pytest.raises(ValidationError, match="has not finished training"):
        benchmark_run_create(owner=alice, benchmark="gsm8k", finetune=alice_finetune)
    with pytest.raises(ValidationError, match="either a base model or"):
        benchmark_run_create(owner=alice, benchmark="gsm8k")
    assert BenchmarkRun.objects.count() == 1


@pytest.mark.parametrize("benchmark,raw,message", [
    ("mmlu", {}, "Unknown benchmark"),
    ("gsm8k", {"limit": "many"}, "Limit must be a whole number"),
    ("gsm8k", {"limit": 2.5}, "whole number"),
    ("gsm8k", {"temperature": "hot"}, "Temperature must be a number"),
    ("gsm8k", {"temperature": 5}, "Temperature must be between"),
    ("gsm8k", {"prompt_template": "Solve it."}, "{question}"),
    ("gsm8k", {"source": "/etc/passwd"}, "shipped with Gemma Garage"),
    ("gsm8k", {"split": "validation"}, "'test' or 'train'"),
    ("aime", {"source": "/etc/passwd"}, "Hugging Face dataset id"),
    ("aime", {"source": "../secret.jsonl"}, "Hugging Face dataset id"),
    ("aime", {"source": "missing.jsonl"}, "no benchmark file named missing.jsonl"),
    ("gsm8k", {"system_prompt": 3}, "System prompt must be text"),
    ("gsm8k", {"unknown": 1}, "Unknown setting 'unknown'. Allowed: few_shot, limit, seed"),
    ("gsm8k", {"subset": "all"}, "Unknown subset 'all'. Choose one of: first, random."),
])
def test_it_explains_impossible_settings(benchmark, raw, message):
    with pytest.raises(ValidationError, match=message):
        benchmark_settings(benchmark=benchmark, raw=raw)


def test_it_takes_blank_values_as_defaults_and_a_blank_limit_as_everything():
    values = benchmark_settings(benchmark="gsm8k", raw={"limit": "", "few_shot": "", "temperature": None})
    assert values["limit"] is None and values["few_shot"] == 0 and values["temperature"] == 0.0
    assert benchmark_settings(benchmark="gsm8k", raw={})["limit"] == 50  # left out: a small first run
    assert benchmark_settings(benchmark="aime", raw={"source": "someone/aime-2025"})["source"] == "someone/aime-2025"


def test_it_stores_the_engines_results_and_items(alice):
    run = benchmark_run_create(owner=alice, benchmark="gsm8k", base_model="tiny-gemma3", settings={"limit": 3})

    def generate(conversations, **kwargs):
        return ["She makes 9 * 2 = $18.\n#### 18", "The answer is 2", "I am not sure."]

    result = benchmark_run_execute(run=run, reporter=RecordingReporter(), generate_fn=generate)
    assert result["benchmark_run"] == str(run.code) and result["n"] == 3
    run.refresh_from_db()
    assert run.results["accuracy"] == pytest.approx(1 / 3) and run.results["format_rate"] == pytest.approx(2 / 3)
    assert "items" not in run.results
    items = list(run.items.values_list("index", "reference", "extracted", "formatted", "correct"))
    assert items == [(0, "18", "18", True, True), (1, "3", "2", True, False), (2, "70000", None, False, False)]
    # A retried job starts over rather than adding rows.
    benchmark_run_execute(run=run, reporter=RecordingReporter(), generate_fn=generate)
    assert run.items.count() == 3


def test_it_reads_aime_files_from_the_servers_benchmark_folder_only(alice, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "aime_2024.jsonl").write_text('{"problem": "Compute 6*7.", "answer": "42"}\n')
    run = benchmark_run_create(owner=alice, benchmark="aime", base_model="tiny-gemma3",
                               settings={"source": "aime_2024.jsonl", "limit": ""})
    result = benchmark_run_execute(run=run, reporter=RecordingReporter(),
                                   generate_fn=lambda conversations, **kw: ["So $\\boxed{42}$."])
    assert result["accuracy"] == 1.0 and run.items.get().reference == "42"


def test_it_resolves_the_model_to_evaluate(alice, alice_finetune, settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path
    tuned = benchmark_run_create(owner=alice, benchmark="gsm8k", finetune=alice_finetune)
    ref = benchmark_model_ref(run=tuned)
    assert ref.adapter.endswith("/model") and ref.path.endswith("/base")
    hub = benchmark_run_create(owner=alice, benchmark="gsm8k", base_model="someone/their-model")
    assert benchmark_model_ref(run=hub).path == "someone/their-model" and benchmark_model_ref(run=hub).adapter is None
    alice_finetune.delete()
    tuned.refresh_from_db()
    with pytest.raises(ReadableError, match="has been deleted"):
        benchmark_model_ref(run=tuned)
