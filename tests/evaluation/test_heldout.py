"""The held-out evaluation in the platform: the split given to the trainer, the automatic run after training, the
report page and API, re-runs, the judge through a provider, and strangers."""
import pytest
from django.core.exceptions import ValidationError

from apps.core.models import Job, JobEvent
from apps.core.services import job_create, job_finish
from apps.datasets.models import Chunk, Document, QAPair, VersionExample
from apps.datasets.services import dataset_create, dataset_version_freeze
from apps.evaluation.heldout.jobs import heldout_evaluation_run
from apps.evaluation.heldout.services import heldout_evaluation_start
from apps.evaluation.models import HeldoutEvaluation
from apps.providers.models import ExternalCallAudit
from apps.providers.services import provider_credential_create
from apps.training import jobs as training_jobs
from apps.training.models import FineTune
from apps.training.jobs import finetune_run
from apps.training.services import finetune_create
from tests.fakes.chat_server import Reply
from workers.engine.evaluate.heldout import load_control_set
from workers.engine.reporting import RecordingReporter

pytestmark = pytest.mark.django_db

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gray", "brown"]


def facts_dataset(owner, n=30, name="Boxes", phrasings=1):
    """Templated facts from one document: the held-out answers follow the pattern the training answers teach. With
    `phrasings` 2, each box's colour is asked two ways (one fact, a short answer), as the generator makes them."""
    dataset = dataset_create(owner=owner, name=name)
    document = Document.objects.create(dataset=dataset, owner=owner, file="docs/boxes.pdf", filename="boxes.pdf",
                                       pages=9)
    chunks = [Chunk.objects.create(document=document, index=i, text=f"Chunk {i}", char_start=i * 10,
                                   char_end=i * 10 + 9, page=i + 1, page_end=i + 1) for i in range(3)]
    if phrasings == 1:
        QAPair.objects.bulk_create(QAPair(dataset=dataset, document=document, chunk=chunks[i % 3],
                                          question=f"What colour is box {i}?", answer=f"Box {i} is {COLOURS[i % 8]}.")
                                   for i in range(n))
    else:
        QAPair.objects.bulk_create(QAPair(dataset=dataset, document=document, chunk=chunks[i % 3], fact=f"box-{i}",
                                          question=question.format(i=i), answer=COLOURS[i % 8])
                                   for i in range(n) for question in ("What colour is box {i}?", "Box {i} has which colour?"))
    return dataset


def facts_version(owner, n=30, ratio=0.2, phrasings=1):
    return dataset_version_freeze(dataset=facts_dataset(owner, n, phrasings=phrasings), heldout_ratio=ratio)


@pytest.fixture
def artifacts(settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.GARAGE_LLM_BASE_URL = settings.GARAGE_LLM_MODEL = settings.GARAGE_LLM_API_KEY = ""
    settings.GARAGE_EVAL_CONTROL = False  # the box answer functions below know only box questions
    return settings.GARAGE_ARTIFACTS_DIR


def trained_finetune(owner, *, n=30, ratio=0.2, steps=30, record=None, phrasings=1):
    """A fine-tune of the tiny model on the facts, really trained (finetune_run, as the task runs it), its job
    succeeded (which queues the automatic evaluation)."""
    finetune = finetune_create(owner=owner, base_model="tiny-gemma3", version=facts_version(owner, n, ratio, phrasings),
                               options={"max_steps": steps, "document_text": False})
    finetune_run(finetune=finetune, reporter=RecordingReporter())
    job_finish(job=finetune.job, status=Job.Status.SUCCEEDED, result={"finetune": str(finetune.code)})
    finetune.refresh_from_db()
    return finetune


class Answers:
    """An answer function for the engine: answers from a table by question (no model)."""

    def __init__(self, answer):
        self.answer = answer

    def __call__(self, conversations, **kwargs):
        return [self.answer(c[-1]["content"]) for c in conversations]


def untrained_finetune(owner, *, n=30, ratio=0.2):
    """A fine-tune that looks trained (artifact recorded, training held examples out) without training."""
    version = facts_version(owner, n, ratio)
    finetune = FineTune.objects.create(owner=owner, dataset=version.dataset, version=version, base_model="tiny-gemma3",
                                       name="Box model", artifact="x/adapter.zip",
                                       metrics={"heldout_examples": version.heldout_count, "em_before": 0.0})
    return finetune


def evaluated(finetune, *, base=None, tuned=None, judge_provider="none"):
    """An evaluation of `finetune` run with answer functions: the base says nothing useful, the tuned model answers
    box questions right except for box 5's colour, which it gets wrong."""
    def right(question):
        number = int(question.split()[-1].rstrip("?"))
        return f"Box {number} is {COLOURS[number % 8]}." if number != 5 else "I do not know."

    evaluation = heldout_evaluation_start(finetune=finetune, judge_provider=judge_provider)
    result = heldout_evaluation_run(evaluation=evaluation, reporter=RecordingReporter(),
                                    answer_base=base or Answers(lambda q: "Box 5 is red." if "box 5?" in q else "Hmm."),
                                    answer_tuned=tuned or Answers(right))
    job_finish(job=evaluation.job, status=Job.Status.SUCCEEDED, result=result)  # as the task ends it
    evaluation.refresh_from_db()
    return evaluation


# ------------------------------------------------------------------------------------------------ the split

def test_it_never_trains_on_the_held_out_examples(alice, artifacts, monkeypatch):
    """What reaches the real training engine (recorded on the way in) against the version's held-out examples."""
    seen = []
    real_train = training_jobs.train

    def recording_train(config, reporter):
        seen.append(config)
        return real_train(config, reporter)

    monkeypatch.setattr(training_jobs, "train", recording_train)
    finetune = trained_finetune(alice, n=30, ratio=0.2, steps=5)
    config = seen[0]
    heldout = list(VersionExample.objects.filter(version=finetune.version, split="heldout").values_list("question", "answer"))
    trained = [(pair["question"], pair["answer"]) for pair in config.pairs]
    assert len(heldout) == 6 and len(trained) == 24
    assert not {q for q, _ in heldout} & {q for q, _ in trained}
    assert not {a for _, a in heldout} & {a for _, a in trained}
    assert sorted((pair["question"], pair["answer"]) for pair in config.eval_pairs) == sorted(heldout)
    assert finetune.metrics["heldout_examples"] == 6
    # The evaluation asks exactly the held-out questions, none of the trained ones.
    evaluation = HeldoutEvaluation.objects.get(finetune=finetune)
    asked = []
    heldout_evaluation_run(evaluation=evaluation, reporter=RecordingReporter(),
                           answer_base=Answers(lambda q: asked.append(q) or ""), answer_tuned=Answers(lambda q: ""))
    assert sorted(asked) == sorted(q for q, _ in heldout)


# ------------------------------------------------------------------------------------------------ automatic run

def test_it_evaluates_automatically_after_training_and_the_report_shows_the_improvement(alice, alice_client, artifacts):
    finetune = trained_finetune(alice, phrasings=2, steps=60)
    version = finetune.version
    assert version.recall_count >= 5 and version.heldout_count == version.recall_count + 12  # 6 unseen facts, 2 ways
    evaluation = HeldoutEvaluation.objects.get(finetune=finetune)
    assert evaluation.automatic and evaluation.job.kind == Job.Kind.EVALUATE and evaluation.job.queue == "gpu"
    assert evaluation.judge_provider == ""  # no provider and no site endpoint: no judge
    lines = [e.data.get("line", "") for e in finetune.job.events.filter(type=JobEvent.Type.LOG)]
    assert f"Held-out evaluation queued ({version.heldout_count} questions)" in lines
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert "Results appear here when the evaluation has finished" in page and str(evaluation.job.code) in page

    result = heldout_evaluation_run(evaluation=evaluation, reporter=RecordingReporter())  # the real models
    finetune.refresh_from_db()
    metrics = finetune.metrics["evaluation"]
    assert metrics["metric"] == "token_f1" and metrics["examples"] == version.heldout_count and metrics["judge"] is None
    # The model learned the colours it trained on (asked the other way round), not those it never saw.
    recall, unseen = metrics["recall"], metrics["unseen"]
    assert recall["n"] == version.recall_count and unseen["n"] == 12 and metrics["control"] is None
    assert recall["token_f1"]["tuned"] >= recall["token_f1"]["base"] + 0.4, metrics
    assert recall["token_f1"]["tuned"] >= unseen["token_f1"]["tuned"] + 0.2, metrics
    assert metrics["tuned"] > metrics["base"]
    assert set(metrics["exact_match"]) == set(metrics["rouge_l"]) == {"base", "tuned"}
    assert metrics["report"] == str(evaluation.code) and result["tuned"]["token_f1"] == metrics["tuned"]
    assert finetune.metrics["train_steps"] == 60  # the training's own metrics stay
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert 'data-metric="token_f1"' in page and 'data-direction="up"' in page
    assert page.count('data-role="heldout-item"') >= 12 and "From boxes.pdf, page" in page
    detail = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert f'href="/benchmarks/heldout/{evaluation.code}/"' in detail and "Held-out evaluation" in detail


def test_it_does_not_evaluate_without_held_out_examples(alice, artifacts):
    finetune = untrained_finetune(alice, n=4)  # fewer than five examples: nothing held out
    finetune.metrics = {"heldout_examples": 0}
    finetune.job = job_create(owner=alice, kind=Job.Kind.TRAIN, queue="gpu", config={"finetune": finetune.pk}, start=False)
    finetune.save()
    job_finish(job=finetune.job, status=Job.Status.SUCCEEDED)
    assert not HeldoutEvaluation.objects.exists() and not Job.objects.filter(kind=Job.Kind.EVALUATE).exists()
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="no held-out examples"):
        heldout_evaluation_start(finetune=finetune)


def test_it_moves_the_automatic_push_after_the_evaluation(alice, artifacts):
    """The push waits for the evaluation, so that the publishing gate sees its result. (This model has no files and
    Alice no Hugging Face connection, so the push is skipped with a log line: that line shows when it was tried.)"""
    from apps.hub.pushes import hub_preferences_update

    hub_preferences_update(owner=alice, auto_push=True)
    finetune = untrained_finetune(alice)
    finetune.job = job_create(owner=alice, kind=Job.Kind.TRAIN, queue="gpu", config={"finetune": finetune.pk}, start=False)
    finetune.save()
    job_finish(job=finetune.job, status=Job.Status.SUCCEEDED)

    def push_lines():
        return [e.data["line"] for e in finetune.job.events.filter(type=JobEvent.Type.LOG)
                if e.data.get("line", "").startswith("Automatic push")]

    evaluation = HeldoutEvaluation.objects.get(finetune=finetune)
    assert push_lines() == []
    job_finish(job=evaluation.job, status=Job.Status.SUCCEEDED)
    assert len(push_lines()) == 1 and push_lines()[0].startswith("Automatic push to Hugging Face skipped: ")
    # A re-run someone starts by hand does not push again.
    rerun = heldout_evaluation_start(finetune=finetune, judge_provider="none")
    job_finish(job=rerun.job, status=Job.Status.SUCCEEDED)
    assert len(push_lines()) == 1


# ------------------------------------------------------------------------------------------------ report

def test_it_reports_the_examples_that_changed_most_with_sources_and_a_filtered_list(alice, alice_client, artifacts):
    finetune = untrained_finetune(alice, n=120, ratio=0.25)  # 30 held out
    evaluation = evaluated(finetune)
    results = evaluation.results
    assert results["examples"] == 30 and results["counts"]["improved"] >= 29 and results["counts"]["same"] == 0
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    improved_section = page.split('data-role="most-improved"')[1].split('data-role="most-worse"')[0]
    assert improved_section.count('data-role="heldout-item"') == 5 and 'data-change="improved"' in improved_section
    assert 'data-role="base-answer"' in improved_section and 'data-role="tuned-answer"' in improved_section
    assert "Reference answer" in improved_section and "From boxes.pdf, page " in improved_section
    item_list = page.split('data-role="item-list"')[1]
    assert item_list.count('data-role="heldout-item"') == 20 and "Page 1 of 2" in page
    second = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/?show=all&page=2").content.decode()
    assert second.split('data-role="item-list"')[1].count('data-role="heldout-item"') == 10
    improved = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/?show=improved").content.decode()
    listed = improved.split('data-role="item-list"')[1]
    assert 'data-change="same"' not in listed and 'data-change="worse"' not in listed
    same = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/?show=same").content.decode()
    assert "No same questions." in same
    assert alice_client.get(f"/benchmarks/heldout/{evaluation.code}/?show=nonsense&page=99").status_code == 200


def test_it_shows_a_tuned_model_that_got_worse_in_red(alice, alice_client, artifacts):
    finetune = untrained_finetune(alice)
    def right(question):
        number = int(question.split()[-1].rstrip("?"))
        return f"Box {number} is {COLOURS[number % 8]}."

    evaluation = evaluated(finetune, base=Answers(right), tuned=Answers(lambda q: "No idea."))
    assert evaluation.results["counts"]["worse"] == 6
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert 'data-metric="token_f1"' in page and 'data-direction="down"' in page
    assert "No question got a better answer." in page
    finetune.refresh_from_db()
    from apps.hub.pushes import hub_publish_gate

    gate = hub_publish_gate(finetune=finetune)  # the publishing gate reads the same numbers
    assert gate.evaluated and gate.tuned < gate.base and gate.metric == "token_f1"


def test_it_reruns_from_the_page_and_refuses_a_second_run_while_one_is_waiting(alice, alice_client, artifacts):
    finetune = untrained_finetune(alice)
    response = alice_client.post(f"/benchmarks/heldout/models/{finetune.code}/run/", {"judge_provider": "none"})
    evaluation = HeldoutEvaluation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/benchmarks/heldout/{evaluation.code}/"
    assert not evaluation.automatic and evaluation.job.kind == Job.Kind.EVALUATE
    again = alice_client.post(f"/benchmarks/heldout/models/{finetune.code}/run/", {"judge_provider": "none"}, follow=True)
    assert "already waiting or running" in again.content.decode() and HeldoutEvaluation.objects.count() == 1
    detail = alice_client.get(f"/training/{finetune.code}/").content.decode()
    # The model page follows the waiting evaluation with its live panel, and offers no second run meanwhile.
    assert f'data-job="{evaluation.job.code}"' in detail and 'data-role="heldout-rerun"' not in detail


# ------------------------------------------------------------------------------------------------ judge

def test_it_has_a_judge_rate_the_answers_and_counts_its_failures(alice, alice_client, artifacts, chat_server, settings):
    """The site's default endpoint judges (the local chat server); one reply is malformed and one fails."""
    settings.GARAGE_LLM_BASE_URL, settings.GARAGE_LLM_MODEL = chat_server.url, chat_server.model
    settings.GARAGE_LLM_CONCURRENCY, settings.GARAGE_LLM_MAX_RETRIES = 1, 0
    chat_server.script(Reply.text('{"score": 1}'), Reply.text("Looks fine to me!"),  # malformed
                       Reply.status(500, "overloaded"), *[Reply.text('{"score": 9}')] * 9)
    finetune = untrained_finetune(alice)
    evaluation = evaluated(finetune, judge_provider="auto")
    assert evaluation.judge_provider == "default" and "fake-model" in evaluation.judge_label
    judge = finetune.__class__.objects.get(pk=finetune.pk).metrics["evaluation"]["judge"]
    assert judge["judged"] == 10 and judge["failed"] == 2 and "site's default endpoint" in judge["provider"]
    assert 0 <= judge["base"] <= 1 and judge["tuned"] == pytest.approx(0.9)
    assert len(chat_server.chat_requests) == 12
    audits = ExternalCallAudit.objects.filter(owner=alice, purpose=ExternalCallAudit.Purpose.JUDGE)
    assert audits.count() == 12 and audits.filter(ok=False).count() == 1 and audits.first().job == evaluation.job
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert 'data-metric="judge"' in page and "2 could not be rated" in page


def test_it_prefers_the_owners_provider_as_judge_and_keeps_its_key_secret(alice, alice_client, artifacts, chat_server, settings):
    settings.GARAGE_LLM_BASE_URL, settings.GARAGE_LLM_MODEL = "http://127.0.0.1:9/v1", "unused"
    chat_server.api_key = "sk-judge-secret-123456"
    credential = provider_credential_create(owner=alice, name="My judge", base_url=chat_server.url,
                                            model=chat_server.model, api_key="sk-judge-secret-123456")
    chat_server.responder = lambda request: Reply.text('{"score": 6}')
    evaluation = evaluated(untrained_finetune(alice), judge_provider="auto")
    assert evaluation.judge_provider == str(credential.code)
    assert evaluation.results["judge"]["judged"] == 12 and evaluation.results["judge"]["failed"] == 0
    assert chat_server.chat_requests[0].headers["authorization"] == "Bearer sk-judge-secret-123456"
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert "My judge" in page and "sk-judge-secret" not in page
    assert "sk-judge-secret" not in str(alice_client.get(f"/api/v1/heldout-evaluations/{evaluation.code}/").content)


def test_it_judges_by_the_rubric_given_on_the_page_or_through_the_api(alice, alice_client, alice_api, artifacts,
                                                                     chat_server, settings):
    settings.GARAGE_LLM_BASE_URL, settings.GARAGE_LLM_MODEL = chat_server.url, chat_server.model
    settings.GARAGE_LLM_MAX_RETRIES = 0
    chat_server.refuse_response_format = 400  # an endpoint without structured output: asked once, then without
    chat_server.responder = lambda request: Reply.text('{"score": 7}')
    finetune = untrained_finetune(alice)
    alice_client.post(f"/benchmarks/heldout/models/{finetune.code}/run/",
                      {"judge_provider": "default", "judge_rubric": "  Colours must be exact.  "})
    evaluation = HeldoutEvaluation.objects.get()
    assert evaluation.settings["judge_rubric"] == "Colours must be exact."
    result = heldout_evaluation_run(evaluation=evaluation, reporter=RecordingReporter(), answer_base=Answers(lambda q: "Hmm."),
                                    answer_tuned=Answers(lambda q: "Box 1 is blue."))
    job_finish(job=evaluation.job, status=Job.Status.SUCCEEDED, result=result)
    assert evaluation.__class__.objects.get(pk=evaluation.pk).results["judge"]["judged"] == 12
    requests = chat_server.chat_requests
    assert chat_server.refused == 1 and len(requests) == 13
    assert all("Colours must be exact." in r.messages[1]["content"] for r in requests)
    page = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert "Colours must be exact.</textarea>" in page  # offered again for the next run

    too_long = alice_api.post("/api/v1/heldout-evaluations/", {"finetune": str(finetune.code), "judge_provider": "none",
                                                               "judge_rubric": "x" * 4001}, format="json")
    assert too_long.status_code == 400 and "rubric is too long" in too_long.json()["message"]
    started = alice_api.post("/api/v1/heldout-evaluations/", {"finetune": str(finetune.code), "judge_provider": "none",
                                                              "judge_rubric": "Short answers are fine."}, format="json")
    assert started.status_code == 201 and started.json()["settings"]["judge_rubric"] == "Short answers are fine."


def test_it_finishes_without_a_judge_score_when_the_judge_is_unreachable(alice, artifacts, settings):
    settings.GARAGE_LLM_BASE_URL, settings.GARAGE_LLM_MODEL = "http://127.0.0.1:9/v1", "judge"  # nothing listens
    settings.GARAGE_LLM_MAX_RETRIES, settings.GARAGE_LLM_TIMEOUT = 0, 2
    evaluation = evaluated(untrained_finetune(alice), judge_provider="default")
    judge = evaluation.results["judge"]
    assert judge["judged"] == 0 and judge["failed"] == 12 and "Could not reach" in judge["error"]
    assert evaluation.results["tuned"]["token_f1"] > evaluation.results["base"]["token_f1"]


# ------------------------------------------------------------------------------------------------ API

def test_it_serves_the_report_and_reruns_through_the_api(alice, alice_api, artifacts):
    finetune = untrained_finetune(alice)
    evaluation = evaluated(finetune)
    report = alice_api.get(f"/api/v1/heldout-evaluations/{evaluation.code}/").json()
    assert report["finetune"] == str(finetune.code) and report["results"]["examples"] == 6
    assert report["results"]["tuned"]["token_f1"] > report["results"]["base"]["token_f1"]
    assert report["most_improved"] and report["most_improved"][0]["change"] == "improved"
    first = report["most_improved"][0]
    assert first["source"]["filename"] == "boxes.pdf" and first["source"]["page"] in (1, 2, 3)
    assert {"question", "reference", "base_answer", "tuned_answer", "f1_delta"} <= set(first)
    items = alice_api.get(f"/api/v1/heldout-evaluations/{evaluation.code}/items/?change=improved").json()
    assert items["count"] == evaluation.results["counts"]["improved"]
    assert all(item["change"] == "improved" for item in items["results"])
    listed = alice_api.get(f"/api/v1/heldout-evaluations/?finetune={finetune.code}").json()
    assert [e["code"] for e in listed["results"]] == [str(evaluation.code)]

    started = alice_api.post("/api/v1/heldout-evaluations/", {"finetune": str(finetune.code), "judge_provider": "none",
                                                              "batch_size": 4}, format="json")
    assert started.status_code == 201, started.content
    assert started.json()["job"]["kind"] == "evaluate" and started.json()["settings"]["batch_size"] == 4
    busy = alice_api.post("/api/v1/heldout-evaluations/", {"finetune": str(finetune.code)}, format="json")
    assert busy.status_code == 400 and "already waiting or running" in busy.json()["message"]


def test_it_refuses_impossible_reruns_readably(alice, alice_api, artifacts):
    finetune = untrained_finetune(alice)
    no_default = alice_api.post("/api/v1/heldout-evaluations/", {"finetune": str(finetune.code),
                                                                 "judge_provider": "default"}, format="json")
    assert no_default.status_code == 400 and "no default chat endpoint" in no_default.json()["message"]
    bad = alice_api.post("/api/v1/heldout-evaluations/", {"finetune": str(finetune.code), "judge_provider": "none",
                                                          "batch_size": 0}, format="json")
    assert bad.status_code == 400 and "batch size" in bad.json()["message"]
    unfinished = untrained_finetune(alice)
    FineTune.objects.filter(pk=unfinished.pk).update(artifact="")
    response = alice_api.post("/api/v1/heldout-evaluations/", {"finetune": str(unfinished.code)}, format="json")
    assert response.status_code == 400 and "has not finished training" in response.json()["message"]
    assert not HeldoutEvaluation.objects.exists()


@pytest.mark.parametrize("raw, message", [
    ({"batchsize": 4}, "Unknown setting 'batchsize'. Allowed: batch_size, max_new_tokens, scrub_pii, judge_rubric."),
    ({"scrub_pii": "maybe"}, "The scrub_pii switch must be on or off"),
    ({"batch_size": "four"}, "The batch size must be a whole number."),
    ({"judge_rubric": 5}, "The judge's rubric must be text."),
])
def test_it_refuses_unknown_settings_and_bad_switches_readably(alice, artifacts, raw, message):
    with pytest.raises(ValidationError) as caught:
        heldout_evaluation_start(finetune=untrained_finetune(alice), judge_provider="none", settings=raw)
    assert message in caught.value.messages[0]
    assert not HeldoutEvaluation.objects.exists()


@pytest.mark.parametrize("value, scrub", [("off", False), ("No", False), (0, False), ("on", True), ("YES", True)])
def test_it_reads_the_scrubbing_switch_as_every_option_does(alice, artifacts, value, scrub):
    evaluation = heldout_evaluation_start(finetune=untrained_finetune(alice), judge_provider="none",
                                          settings={"scrub_pii": value})
    assert evaluation.settings["scrub_pii"] is scrub


# ------------------------------------------------------------------------------------------------ strangers

def test_it_answers_404_to_strangers(alice, bob, alice_client, bob_api, alice_api, artifacts):
    from django.test import Client

    finetune = untrained_finetune(alice)
    evaluation = evaluated(finetune)
    assert alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").status_code == 200
    client = Client()
    client.force_login(bob)
    assert client.get(f"/benchmarks/heldout/{evaluation.code}/").status_code == 404
    assert client.post(f"/benchmarks/heldout/models/{finetune.code}/run/").status_code == 404
    assert bob_api.get(f"/api/v1/heldout-evaluations/{evaluation.code}/").status_code == 404
    assert bob_api.get(f"/api/v1/heldout-evaluations/{evaluation.code}/items/").status_code == 404
    assert bob_api.get("/api/v1/heldout-evaluations/").json()["count"] == 0
    assert bob_api.get(f"/api/v1/heldout-evaluations/?finetune={finetune.code}").status_code == 404
    assert bob_api.post("/api/v1/heldout-evaluations/", {"finetune": str(finetune.code)}, format="json").status_code == 404
    # Nor may Bob make Alice's run use his provider, or his run use hers.
    alice_provider = provider_credential_create(owner=alice, name="Hers", base_url="http://127.0.0.1:9/v1", model="m")
    bob_finetune = untrained_finetune(bob)
    assert bob_api.post("/api/v1/heldout-evaluations/", {"finetune": str(bob_finetune.code),
                                                         "judge_provider": str(alice_provider.code)},
                        format="json").status_code == 404
    assert HeldoutEvaluation.objects.filter(owner=bob).count() == 0
    client.logout()
    assert client.get(f"/benchmarks/heldout/{evaluation.code}/").status_code == 302  # to the sign-in page


def test_it_shows_the_planned_memory_and_the_held_out_loss_on_the_model_page(alice, alice_client, artifacts):
    finetune = trained_finetune(alice, steps=5)
    assert finetune.metrics["plan"]["peak_gib"] > 0 and finetune.metrics["plan"]["device"]
    assert finetune.metrics["eval_loss"] > 0 and finetune.metrics["heldout_examples"] == 6
    page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert f"Planned before training: peak memory {finetune.metrics['plan']['peak_gib']} GiB" in page
    assert "Loss on the 6 held-out examples" in page
    assert f"/playground/?model={finetune.code}" in page and f"/benchmarks/new/?finetune={finetune.code}" in page
    playground = alice_client.get(f"/playground/?model={finetune.code}")
    assert playground.status_code == 200 and str(finetune.code) in playground.content.decode()


def test_it_asks_the_control_set_and_reports_forgetting_apart(alice, artifacts, settings):
    settings.GARAGE_EVAL_CONTROL = True
    control = {c["question"]: c["answer"] for c in load_control_set()}
    assert len(control) >= 40 and all(len(a.split()) <= 4 for a in control.values())
    finetune = untrained_finetune(alice)
    forgotten = set(list(control)[::4])

    def base(question):
        return control.get(question, "Hmm.")

    def tuned(question):  # knows the boxes now, but forgot a quarter of the general questions
        if question in control:
            return "Box 1 is red." if question in forgotten else control[question]
        number = int(question.split()[-1].rstrip("?"))
        return f"Box {number} is {COLOURS[number % 8]}."

    evaluation = evaluated(finetune, base=Answers(base), tuned=Answers(tuned))
    finetune.refresh_from_db()
    metrics = finetune.metrics["evaluation"]
    assert metrics["control"]["n"] == len(control) and metrics["unseen"]["n"] == 6 and metrics["recall"] is None
    assert metrics["control"]["token_f1"]["base"] == 1.0 and metrics["control"]["exact_match"]["base"] == 1.0
    assert metrics["control"]["token_f1"]["tuned"] == pytest.approx(1 - len(forgotten) / len(control), abs=1e-4)
    assert metrics["unseen"]["token_f1"] == {"base": 0.0, "tuned": 1.0}
    groups = list(evaluation.items.order_by("index").values_list("group", flat=True))
    assert groups == ["unseen"] * 6 + ["control"] * len(control)
    assert evaluation.items.filter(group="control", example__isnull=True).count() == len(control)


def test_it_shows_recall_unseen_and_control_first_on_the_model_page_and_the_report(alice, alice_client, artifacts,
                                                                                    settings):
    settings.GARAGE_EVAL_CONTROL = True
    finetune = untrained_finetune(alice)
    control = {c["question"]: c["answer"] for c in load_control_set()}

    def tuned(question):  # right about the boxes, wrong about everything general: it forgot
        if question in control:
            return "Box 1 is red."
        number = int(question.split()[-1].rstrip("?"))
        return f"Box {number} is {COLOURS[number % 8]}."

    evaluation = evaluated(finetune, base=Answers(lambda q: control.get(q, "Hmm.")), tuned=Answers(tuned))
    page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    learning = page.split('data-role="learning"')[1].split("</table>")[0]
    assert learning.index('data-group="unseen"') < learning.index('data-group="control"')
    assert 'data-group="control" data-verdict="forgot"' in learning and 'data-group="recall"' not in learning
    assert page.index('data-role="learning"') < page.index("Exact match on the training questions")
    report = alice_client.get(f"/benchmarks/heldout/{evaluation.code}/").content.decode()
    assert 'data-group="control" data-verdict="forgot"' in report
    assert report.count('data-group="control"') >= 2 and "A general question from the control set" in report
