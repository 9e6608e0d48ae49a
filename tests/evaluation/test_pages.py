"""The benchmark pages: list, form, report, download and comparison, for the owner and for strangers."""
import json

import pytest

from apps.evaluation.models import BenchmarkRun
from tests.evaluation.conftest import finished_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


def test_it_lists_the_owners_runs_only(alice_client, alice_run, bob):
    finished_run(bob, name="Bob's run")
    page = alice_client.get("/benchmarks/").content.decode()
    assert "Tiny on GSM8K" in page and "Bob&#x27;s run" not in page and "67%" in page
    assert 'href="/benchmarks/"' in page  # the navigation link


def test_it_explains_an_empty_list(alice_client):
    page = alice_client.get("/benchmarks/").content.decode()
    assert "No benchmark runs yet" in page


def test_it_starts_a_run_from_the_form(alice_client, alice, alice_finetune):
    page = alice_client.get("/benchmarks/new/").content.decode()
    assert "Alice&#x27;s maths model" in page and "Tiny test model" in page and "{question}" in page
    response = alice_client.post("/benchmarks/new/", {
        "benchmark": "gsm8k", "model": f"finetune:{alice_finetune.code}", "limit": "5", "subset": "random", "seed": "3",
        "few_shot": "2", "temperature": "0", "top_p": "1", "max_new_tokens": "256", "batch_size": "4"})
    run = BenchmarkRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/benchmarks/{run.code}/"
    assert run.finetune == alice_finetune and run.settings["limit"] == 5 and run.settings["subset"] == "random"
    assert run.settings["few_shot"] == 2 and run.job.kind == "benchmark"
    response = alice_client.post("/benchmarks/new/", {
        "benchmark": "gsm8k", "model": "other", "model_other": "my-org/my-model", "subset": "first",
        "few_shot": "0", "temperature": "0", "top_p": "1", "max_new_tokens": "64", "batch_size": "1", "seed": "0"})
    assert response.status_code == 302 and BenchmarkRun.objects.latest("created_at").base_model == "my-org/my-model"


def test_it_shows_readable_form_errors(alice_client):
    response = alice_client.post("/benchmarks/new/", {"benchmark": "gsm8k", "subset": "first", "few_shot": "0",
                                                      "temperature": "0", "top_p": "1", "max_new_tokens": "64",
                                                      "batch_size": "1", "seed": "0"})
    assert response.status_code == 400 and "Choose a model to evaluate" in response.content.decode()
    response = alice_client.post("/benchmarks/new/", {"benchmark": "gsm8k", "model": "tiny-gemma3", "subset": "first",
                                                      "few_shot": "0", "temperature": "0", "top_p": "1",
                                                      "max_new_tokens": "64", "batch_size": "1", "seed": "0",
                                                      "prompt_template": "Solve this."})
    assert response.status_code == 400 and "{question}" in response.content.decode()
    assert not BenchmarkRun.objects.exists()


def test_it_reports_a_run_with_filterable_pages_of_items(alice_client, alice):
    run = finished_run(alice, correct=[True] * 30 + [False] * 5)
    page = alice_client.get(f"/benchmarks/{run.code}/").content.decode()
    assert "86% (30 of 35)" in page and "Format adherence" in page and "17 characters" in page
    assert page.count('data-role="item"') == 25 and "Page 1 of 2" in page
    wrong = alice_client.get(f"/benchmarks/{run.code}/?show=incorrect").content.decode()
    assert wrong.count('data-role="item"') == 5 and 'data-correct="true"' not in wrong
    second = alice_client.get(f"/benchmarks/{run.code}/?show=correct&page=2").content.decode()
    assert second.count('data-correct="true"') == 5
    assert alice_client.get(f"/benchmarks/{run.code}/?show=nonsense").status_code == 200


def test_it_shows_a_queued_run_with_its_progress_panel(alice_client, alice):
    from apps.evaluation.services import benchmark_run_create

    run = benchmark_run_create(owner=alice, benchmark="gsm8k", base_model="tiny-gemma3")
    page = alice_client.get(f"/benchmarks/{run.code}/").content.decode()
    assert "Results appear here when the run has finished" in page and str(run.job.code) in page


def test_it_downloads_every_answer(alice_client, alice_run):
    response = alice_client.get(f"/benchmarks/{alice_run.code}/items.jsonl")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [r["correct"] for r in rows] == [True, False, True] and rows[1]["extracted"] == "2"


def test_it_compares_runs_in_a_table_and_a_chart(alice_client, alice, alice_run):
    other = finished_run(alice, name="Bigger model", correct=(True, True, True))
    page = alice_client.get(f"/benchmarks/compare/?runs={alice_run.code}&runs={other.code}").content.decode()
    assert page.count('data-role="bar"') == 2 and "<svg" in page and "100%" in page and "67%" in page
    assert "Bigger model" in page and "Tiny on GSM8K" in page
    recent = alice_client.get("/benchmarks/compare/?benchmark=gsm8k").content.decode()
    assert recent.count('data-role="bar"') == 2
    aime = alice_client.get("/benchmarks/compare/?benchmark=aime").content.decode()
    assert "No finished runs to compare yet" in aime


def test_it_refuses_to_compare_different_benchmarks(alice_client, alice, alice_run, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    aime = finished_run(alice, benchmark="aime")
    response = alice_client.get(f"/benchmarks/compare/?runs={alice_run.code}&runs={aime.code}")
    assert response.status_code == 400 and "different benchmarks" in response.content.decode()


def test_it_answers_404_to_strangers(bob_client, alice_run, alice_finetune):
    for url in [f"/benchmarks/{alice_run.code}/", f"/benchmarks/{alice_run.code}/items.jsonl",
                f"/benchmarks/compare/?runs={alice_run.code}", f"/benchmarks/{alice_run.code}/?show=correct"]:
        assert bob_client.get(url).status_code == 404, url
    assert "Tiny on GSM8K" not in bob_client.get("/benchmarks/").content.decode()
    assert "Alice" not in bob_client.get("/benchmarks/new/").content.decode()
    response = bob_client.post("/benchmarks/new/", {
        "benchmark": "gsm8k", "model": f"finetune:{alice_finetune.code}", "subset": "first", "few_shot": "0",
        "temperature": "0", "top_p": "1", "max_new_tokens": "64", "batch_size": "1", "seed": "0"})
    assert response.status_code == 404
    assert BenchmarkRun.objects.filter(finetune=alice_finetune).count() == 0


def test_it_asks_anonymous_visitors_to_sign_in(client, alice_run):
    for url in ["/benchmarks/", "/benchmarks/new/", "/benchmarks/compare/", f"/benchmarks/{alice_run.code}/",
                f"/benchmarks/{alice_run.code}/items.jsonl"]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
