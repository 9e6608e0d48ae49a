"""A benchmark may only load what a training could: catalogue models, Hub ids and the server's model folders, never
a path into the server (another user's outputs, say)."""
import pytest

from apps.evaluation.models import BenchmarkRun

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("base_model", ["/etc", "var/artifacts/someone-elses-model/model", "../model"])
def test_it_refuses_paths_outside_the_model_folders(alice_api, base_model, settings):
    response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": base_model, "limit": 3},
                              format="json")
    assert response.status_code == 400 and "model folders of this server" in str(response.json())
    assert not BenchmarkRun.objects.exists()


def test_it_takes_catalogue_models_and_hub_ids(alice_api):
    for base_model in ("google/gemma-3-270m-it", "someone/their-model"):
        response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": base_model, "limit": 3},
                                  format="json")
        assert response.status_code == 201, response.content
    assert set(BenchmarkRun.objects.values_list("base_model", flat=True)) == {"google/gemma-3-270m-it", "someone/their-model"}
