"""Pairs by hand and curation, through the API and the job system (the judge against a real local chat server)."""
import pytest
from django.core.exceptions import ValidationError

from apps.core.models import Job
from apps.datasets.models import QAPair
from apps.datasets.services import curate_options, dataset_curate_start
from apps.providers.models import ExternalCallAudit
from apps.providers.services import provider_credential_create
from tests.datasets.curation_helpers import dataset_with_pairs
from tests.fixtures.jobs import run_job_body
from tests.live import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(alice):
    return dataset_with_pairs(alice)


def pairs_url(dataset, pk=None):
    return f"/api/v1/datasets/{dataset.code}/pairs/" + (f"{pk}/" if pk else "")


def test_it_lists_and_searches_pairs_with_their_source_page(alice_api, dataset):
    listed = alice_api.get(pairs_url(dataset)).json()
    assert listed["count"] == 4
    first = listed["results"][0]
    assert first["question"] == "Where does the Lumen valley lie?" and first["page"] == 1 and first["chunk_index"] == 0
    assert first["document"] == str(dataset.documents.get().code)
    found = alice_api.get(pairs_url(dataset), {"search": "RIVER"}).json()["results"]
    assert [p["question"] for p in found] == ["How many rivers cross the valley?", "Which river is the widest?"]
    assert {p["page"] for p in found} == {2}
    assert alice_api.get(pairs_url(dataset), {"search": "one word"}).json()["count"] == 1  # the system prompt counts too


def test_it_adds_edits_and_deletes_pairs(alice_api, dataset):
    created = alice_api.post(pairs_url(dataset), {"question": " Who lives there? ", "answer": "Herders.", "system": "Be brief."},
                             format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["question"], body["source"], body["system"], body["document"]) == ("Who lives there?", "manual", "Be brief.", None)
    pair = QAPair.objects.get(pk=body["id"])
    QAPair.objects.filter(pk=pair.pk).update(rating=9)
    edited = alice_api.patch(pairs_url(dataset, pair.pk), {"answer": "Goat herders."}, format="json")
    assert edited.status_code == 200 and edited.json()["answer"] == "Goat herders."
    pair.refresh_from_db()
    # The rating judged the old text; the system prompt was not sent, so it stays.
    assert (pair.answer, pair.rating, pair.system, pair.question) == ("Goat herders.", None, "Be brief.", "Who lives there?")
    replaced = alice_api.put(pairs_url(dataset, pair.pk), {"question": "Who?", "answer": "Herders.", "system": ""}, format="json")
    assert replaced.status_code == 200
    pair.refresh_from_db()
    assert (pair.question, pair.system) == ("Who?", "")
    assert alice_api.delete(pairs_url(dataset, pair.pk)).status_code == 204
    assert not QAPair.objects.filter(pk=pair.pk).exists()


def test_it_refuses_empty_pairs_readably(alice_api, dataset):
    response = alice_api.post(pairs_url(dataset), {"question": "   ", "answer": "x"}, format="json")
    assert response.status_code == 400 and response.json()["message"] == "Write a question."
    pair = dataset.pairs.first()
    response = alice_api.patch(pairs_url(dataset, pair.pk), {"answer": ""}, format="json")
    assert response.status_code == 400 and "answer" in str(response.json())
    assert alice_api.patch(pairs_url(dataset, pair.pk), {"answer": "x" * 100_001}, format="json").json()["message"] == \
        "The answer is longer than 100,000 characters."


def test_it_hides_pairs_from_strangers_and_from_other_datasets(alice, alice_api, bob_api, charlie, dataset):
    from rest_framework.test import APIClient

    pair = dataset.pairs.first()
    other = dataset_with_pairs(alice, name="Other")
    assert alice_api.get(pairs_url(other, pair.pk)).status_code == 404
    charlie_api = APIClient()
    charlie_api.force_authenticate(charlie)
    for client in (bob_api, charlie_api):
        assert client.get(pairs_url(dataset)).status_code == 404
        assert client.get(pairs_url(dataset, pair.pk)).status_code == 404
        assert client.post(pairs_url(dataset), {"question": "Q?", "answer": "A."}, format="json").status_code == 404
        assert client.patch(pairs_url(dataset, pair.pk), {"answer": "Mine now"}, format="json").status_code == 404
        assert client.delete(pairs_url(dataset, pair.pk)).status_code == 404
        assert client.post(pairs_url(dataset, pair.pk) + "restore/").status_code == 404
        assert client.post(f"/api/v1/datasets/{dataset.code}/curate/", {}, format="json").status_code == 404
        assert client.post(f"/api/v1/datasets/{dataset.code}/restore/").status_code == 404
    pair.refresh_from_db()
    assert pair.answer == "East of the copper hills." and dataset.pairs.count() == 4


def test_it_curates_in_a_job_and_sets_pairs_aside_without_deleting_them(alice_api, dataset):
    QAPair.objects.create(dataset=dataset, question="How many rivers cross the valley", answer="3")
    QAPair.objects.create(dataset=dataset, question="Why?", answer="Because.")
    response = alice_api.post(f"/api/v1/datasets/{dataset.code}/curate/", {"min_question_chars": 10}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(code=response.json()["code"])
    assert job.kind == Job.Kind.CURATE and job.config["options"]["min_question_chars"] == 10
    result = run_job_body(job)
    assert result["kept"] == 4 and result["exact_duplicate"] == 1 and result["too_short"] == 1
    assert alice_api.get(pairs_url(dataset)).json()["count"] == 4
    aside = alice_api.get(pairs_url(dataset), {"set_aside": "true"}).json()["results"]
    assert [(p["question"], p["excluded"]) for p in aside] == [("How many rivers cross the valley", "exact_duplicate"),
                                                               ("Why?", "too_short")]
    assert "How many rivers cross the valley?" in aside[0]["excluded_note"]
    assert QAPair.objects.filter(dataset=dataset).count() == 6
    assert any("Kept 4 of 6 pairs" in e.data.get("line", "") for e in job.events.all())
    restored = alice_api.post(pairs_url(dataset, aside[1]["id"]) + "restore/")
    assert restored.status_code == 200 and restored.json()["excluded"] == ""
    assert alice_api.post(f"/api/v1/datasets/{dataset.code}/restore/").json() == {"restored": 1}
    assert alice_api.get(pairs_url(dataset)).json()["count"] == 6


@pytest.mark.parametrize("options, message", [
    ({"near_threshold": 5}, "near-duplicate similarity must be between 0 and 1"),
    ({"min_question_chars": 50, "max_question_chars": 10}, "shortest question"),
    ({"judge": True}, "no default chat endpoint"),
    ({"judge": True, "judge_provider": "00000000-0000-0000-0000-000000000000"}, "No such provider"),
    ({"judge_rubric": "x" * 4001}, "rubric is too long"),
])
def test_it_refuses_impossible_curation_readably(alice_api, dataset, options, message):
    response = alice_api.post(f"/api/v1/datasets/{dataset.code}/curate/", options, format="json")
    assert response.status_code == 400 and message in response.json()["message"]
    assert not Job.objects.filter(kind=Job.Kind.CURATE).exists()


@pytest.mark.parametrize("options, message", [
    ({"dedupe": True}, "Unknown setting 'dedupe'. Allowed: dedupe_exact, dedupe_near, near_threshold"),
    ({"judge": "maybe"}, "Judge must be on or off (true/false, yes/no, on/off or 1/0), not 'maybe'."),
    ({"dedupe_near": 2}, "Dedupe near must be on or off"),
    ({"min_question_chars": "ten"}, "Min question chars must be a whole number."),
])
def test_it_refuses_unknown_options_and_bad_switches_readably(dataset, options, message):
    with pytest.raises(ValidationError) as caught:
        dataset_curate_start(dataset=dataset, options=options)
    assert message in caught.value.messages[0]
    assert not Job.objects.filter(kind=Job.Kind.CURATE).exists()


def test_it_reads_switches_as_every_option_does(dataset):
    options = curate_options({"dedupe_exact": "off", "dedupe_near": "No", "judge": "0", "scrub_pii": "YES"})
    assert (options["dedupe_exact"], options["dedupe_near"], options["judge"], options["scrub_pii"]) == (False, False,
                                                                                                       False, True)
    job = dataset_curate_start(dataset=dataset, options={"dedupe_exact": "false", "min_question_chars": "10"})
    assert job.config["options"]["dedupe_exact"] is False and job.config["options"]["min_question_chars"] == 10


def test_it_refuses_to_curate_an_empty_dataset(alice_api):
    code = alice_api.post("/api/v1/datasets/", {"name": "Empty"}, format="json").json()["code"]
    response = alice_api.post(f"/api/v1/datasets/{code}/curate/", {}, format="json")
    assert response.status_code == 400 and "no question-answer pairs to curate" in response.json()["message"]


def test_it_judges_through_the_owners_provider_with_audit_and_scrubbing(alice, alice_api, dataset, chat_server, settings):
    import json
    import re

    settings.GARAGE_LLM_MAX_RETRIES = 0
    chat_server.api_key = "sk-judge-secret-0123456789"
    credential = provider_credential_create(owner=alice, name="Judge", base_url=chat_server.url, model=chat_server.model,
                                            api_key="sk-judge-secret-0123456789")
    QAPair.objects.create(dataset=dataset, question="Whom should visitors write to?", answer="Write to ranger@lumen.example.")

    def responder(request):
        prompt = request.messages[-1]["content"]
        pairs = re.findall(r"Pair (\d+):\nQuestion: (.*?)\n", prompt)
        # The sky question gets a poor rating; one pair per batch is left out (an answer that half follows the format).
        return chat_server_reply([{"id": int(n), "rating": 2 if "sky" in q else 8} for n, q in pairs if "widest" not in q])

    def chat_server_reply(items):
        from tests.fakes.chat_server import Reply

        return Reply.text(json.dumps(items))

    chat_server.responder = responder
    response = alice_api.post(f"/api/v1/datasets/{dataset.code}/curate/",
                              {"judge": True, "judge_threshold": 5, "judge_provider": str(credential.code),
                               "judge_batch_size": 2, "judge_rubric": "Prefer answers that name a place."}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(code=response.json()["code"])
    assert "sk-judge" not in json.dumps(job.config)
    result = run_job_body(job)
    assert result["low_rating"] == 1 and result["unrated"] == 1 and result["judge_requests"] == 3
    ratings = dict(dataset.pairs.values_list("question", "rating"))
    assert ratings["What colour is the sky at dusk?"] == 2.0 and ratings["Which river is the widest?"] is None
    assert ratings["Where does the Lumen valley lie?"] == 8.0
    assert dataset.pairs.get(question="What colour is the sky at dusk?").excluded == "low_rating"
    sent = "\n".join(r.text for r in chat_server.chat_requests)
    assert "ranger@lumen.example" not in sent and "[EMAIL]" in sent
    # The user's rubric reached every request; structured output was asked for (the fake server takes it).
    assert all("Prefer answers that name a place." in r.text for r in chat_server.chat_requests)
    assert all(r.body["response_format"]["type"] == "json_schema" for r in chat_server.chat_requests)
    audits = ExternalCallAudit.objects.filter(owner=alice, purpose=ExternalCallAudit.Purpose.JUDGE, job=job)
    assert audits.count() == 3 and all(a.ok for a in audits) and sum(a.pii_replacements for a in audits) == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_it_curates_on_a_live_worker(alice, alice_api, worker):
    dataset = dataset_with_pairs(alice, pairs=[("Where is the valley?", "East.", ""), ("where is the valley", "East!", ""),
                                               ("Who lives in the valley?", "Herders.", "")])
    response = alice_api.post(f"/api/v1/datasets/{dataset.code}/curate/", {}, format="json")
    assert response.status_code == 202
    job = Job.objects.get(code=response.json()["code"])
    wait_for(lambda: Job.objects.get(pk=job.pk).is_final, 60, what="the curation job")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert list(dataset.pairs.included().values_list("question", flat=True)) == ["Where is the valley?", "Who lives in the valley?"]
