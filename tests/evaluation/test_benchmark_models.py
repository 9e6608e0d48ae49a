"""A benchmark may only load what a training could: catalogue models, Hub ids and the server's model folders, never
a path into the server (another user's outputs, say)."""
import pytest

from apps.evaluation.models import BenchmarkRun
from apps.evaluation.jobs import benchmark_model_ref, benchmark_run_execute
from apps.evaluation.services import benchmark_run_create
from apps.training.model_choices import default_model_choice
from tests.fixtures.models import STANDIN_ID, STANDIN_LABEL, make_tuned_model, picker, standin_model  # noqa: F401
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("base_model", ["/etc", "var/artifacts/someone-elses-model/model", "../model"])
def test_it_refuses_paths_outside_the_model_folders(alice_api, base_model, settings):
    response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": base_model, "limit": 3},
                              format="json")
    assert response.status_code == 400 and "model folders of this server" in str(response.json())
    assert not BenchmarkRun.objects.exists()


def test_it_takes_hub_ids(alice_api):
    response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": "someone/their-model",
                                                      "limit": 3}, format="json")
    assert response.status_code == 201, response.content
    assert BenchmarkRun.objects.get().base_model == "someone/their-model"


def test_it_takes_installed_models_and_the_owners_tuned_models(alice, bob, alice_api, bob_api, standin_model, settings):
    tuned = make_tuned_model(alice, name="Maths model", finished=False)
    tuned.artifact = "x/adapter.zip"
    tuned.save()
    for base_model in (STANDIN_ID, f"finetune:{tuned.code}"):
        response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": base_model, "limit": 3},
                                  format="json")
        assert response.status_code == 201, response.content
    runs = {run.base_model or f"finetune:{run.finetune.code}": run for run in BenchmarkRun.objects.all()}
    assert set(runs) == {STANDIN_ID, f"finetune:{tuned.code}"}
    # In the worker the PyPI copy is its converted folder (the Hub is off here), the tuned model its base and adapter.
    assert benchmark_model_ref(run=runs[STANDIN_ID]).path == str(settings.GARAGE_MODELS_DIR / "pypi--standin-model")
    assert benchmark_model_ref(run=runs[f"finetune:{tuned.code}"]).adapter.endswith("/model")
    response = bob_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": f"finetune:{tuned.code}"},
                            format="json")
    assert response.status_code == 404


def test_it_benchmarks_a_pypi_copy_offline(alice, standin_model):
    run = benchmark_run_create(owner=alice, benchmark="gsm8k", base_model=STANDIN_ID,
                               settings={"limit": 2, "max_new_tokens": 4})
    result = benchmark_run_execute(run=run, reporter=RecordingReporter())
    assert result["n"] == 2 and run.items.count() == 2


def test_it_offers_the_models_every_feature_offers(alice, alice_client, standin_model):
    tuned = make_tuned_model(alice, name="Maths model", finished=False)
    tuned.artifact = "x/adapter.zip"
    tuned.save()
    page = alice_client.get("/benchmarks/new/").content.decode()
    groups, selected = picker(page, "model")
    assert (STANDIN_ID, f"{STANDIN_LABEL} · 1 M parameters") in groups["Installed on this server"]
    assert f"finetune:{tuned.code}" in dict(groups["Your models"])
    assert dict(groups["Test model"])["tiny-gemma3"].startswith("Tiny test model")
    assert selected == default_model_choice()
