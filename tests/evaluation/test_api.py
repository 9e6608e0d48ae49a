"""The REST API of benchmark runs: /api/v1/benchmarks/."""
import pytest

from apps.evaluation.models import BenchmarkRun

pytestmark = pytest.mark.django_db


def test_it_starts_a_run_of_a_base_model(alice_api):
    response = alice_api.post("/api/v1/benchmarks/", {"benchmark": "gsm8k", "base_model": "tiny-gemma3", "limit": 3,
                                                      "temperature": 0.7, "seed": 5}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["job"]["kind"] == "benchmark" and body["job"]["queue"] == "gpu" and body["job"]["status"] == "queued"
    assert body["settings"]["limit"] == 3 and body["settings"]["temperature"] == 0.7 and body["model_label"] == "tiny-gemma3"


def test_it_starts_a_run_of_a_finetune(alice_api, alice_finetune):
    response = alice_api.post("/api/v1/benchmarks/", {"finetune": str(alice_finetune.code), "limit": None}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["finetune"] == str(alice_finetune.code) and response.json()["settings"]["limit"] is None


def test_it_explains_bad_requests(alice_api):
    for data, message in [({"benchmark": "gsm8k"}, "either a base model"),
                          ({"base_model": "tiny-gemma3", "few_shot": 100}, "Few shot must be between"),
                          ({"base_model": "tiny-gemma3", "prompt_template": "no placeholder"}, "{question}")]:
        response = alice_api.post("/api/v1/benchmarks/", data, format="json")
        assert response.status_code == 400 and message in response.json()["message"], response.content
    assert alice_api.post("/api/v1/benchmarks/", {"benchmark": "mmlu"}, format="json").status_code == 400
    assert not BenchmarkRun.objects.exists()


def test_it_lists_shows_and_pages_items(alice_api, alice, alice_run):
    listing = alice_api.get("/api/v1/benchmarks/").json()
    assert [r["code"] for r in listing["results"]] == [str(alice_run.code)]
    assert alice_api.get("/api/v1/benchmarks/?benchmark=aime").json()["results"] == []
    detail = alice_api.get(f"/api/v1/benchmarks/{alice_run.code}/").json()
    assert detail["results"]["accuracy"] == pytest.approx(2 / 3) and detail["job"]["status"] == "succeeded"
    items = alice_api.get(f"/api/v1/benchmarks/{alice_run.code}/items/").json()
    assert items["count"] == 3 and items["results"][1]["extracted"] == "2" and items["results"][1]["correct"] is False
    wrong = alice_api.get(f"/api/v1/benchmarks/{alice_run.code}/items/?correct=false").json()
    assert [i["index"] for i in wrong["results"]] == [1]


def test_it_answers_404_to_strangers(bob_api, alice_run, alice_finetune):
    for url in [f"/api/v1/benchmarks/{alice_run.code}/", f"/api/v1/benchmarks/{alice_run.code}/items/"]:
        assert bob_api.get(url).status_code == 404, url
    assert bob_api.get("/api/v1/benchmarks/").json()["results"] == []
    response = bob_api.post("/api/v1/benchmarks/", {"finetune": str(alice_finetune.code)}, format="json")
    assert response.status_code == 404
    assert not BenchmarkRun.objects.filter(owner__email="bob@example.com").exists()


def test_it_refuses_anonymous_requests(client, alice_run):
    assert client.get("/api/v1/benchmarks/").status_code in (401, 403)
    assert client.get(f"/api/v1/benchmarks/{alice_run.code}/").status_code in (401, 403)


def test_it_documents_the_endpoints(alice_api):
    schema = alice_api.get("/api/v1/schema/").content.decode()
    assert "/api/v1/benchmarks/{code}/items/" in schema and "BenchmarkRunCreate" in schema
