import pytest

from apps.core.models import Job
from apps.core.services import job_finish
from apps.datasets.services import dataset_create
from apps.evaluation.models import BenchmarkItem
from apps.evaluation.services import benchmark_run_create
from apps.training.models import FineTune


def finished_run(owner, *, base_model="tiny-gemma3", finetune=None, benchmark="gsm8k", name="", correct=(True, False, True)):
    """A run whose job has succeeded, with one item per entry of `correct`."""
    run = benchmark_run_create(owner=owner, benchmark=benchmark, base_model="" if finetune else base_model,
                               finetune=finetune, settings={"limit": len(correct)}, name=name)
    BenchmarkItem.objects.bulk_create(
        BenchmarkItem(run=run, index=i, problem_id=str(i), question=f"Question {i}: how many apples?", reference=str(i),
                      completion=f"I count.\n#### {i if ok else i + 1}", extracted=str(i if ok else i + 1),
                      formatted=True, correct=ok)
        for i, ok in enumerate(correct))
    n, right = len(correct), sum(correct)
    run.results = {"n": n, "correct": right, "accuracy": right / n, "format_rate": 1.0, "mean_length_chars": 17.0,
                   "mean_length_words": 3.0, "seconds": 0.5, "few_shot_used": 0}
    run.save(update_fields=["results"])
    job_finish(job=run.job, status=Job.Status.SUCCEEDED, result=run.results)
    return run


@pytest.fixture
def alice_finetune(alice):
    dataset = dataset_create(owner=alice, name="Maths")
    return FineTune.objects.create(owner=alice, dataset=dataset, base_model="tiny-gemma3", name="Alice's maths model",
                                   artifact="x/adapter.zip")


@pytest.fixture
def alice_run(alice):
    return finished_run(alice, name="Tiny on GSM8K")
