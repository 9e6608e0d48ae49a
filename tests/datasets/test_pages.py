"""The dataset pages: chat preview, search, pagination, editing, curation, import/export, versions, sources."""
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import Job
from apps.datasets.models import DatasetVersion, QAPair
from apps.datasets.services import dataset_version_freeze, document_upload
from apps.training.models import FineTune
from tests.datasets.curation_helpers import PAGE_TWO, dataset_with_pairs
from tests.fixtures.jobs import run_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(alice):
    return dataset_with_pairs(alice)


def page_text(response) -> str:
    return response.content.decode()


def training_form_data(**changes) -> dict:
    """What the training form posts when left at its initial values (whatever fields it grows)."""
    from apps.training.forms import TrainingOptionsForm

    return {name: field.initial for name, field in TrainingOptionsForm().fields.items() if field.initial is not None} | changes


def test_it_previews_pairs_as_a_chat_linking_to_their_source_page(alice_client, dataset):
    response = alice_client.get(f"/datasets/{dataset.code}/")
    assert response.status_code == 200
    html = page_text(response)
    document = dataset.documents.get()
    articles = re.findall(r'<article class="chat[^"]*" id="pair-\d+">.*?</article>', html, re.S)
    assert len(articles) == 4
    sky = next(article for article in articles if "What colour is the sky" in article)
    assert '<div class="turn system"><span class="who">System</span>Answer in one word.</div>' in sky
    assert '<div class="turn user"><span class="who">User</span>What colour is the sky at dusk?</div>' in sky
    assert '<div class="turn model"><span class="who">Model</span>Green.</div>' in sky
    assert f'href="/datasets/documents/{document.code}/?chunk=0#mark">From field-guide.pdf, page 1</a>' in sky
    assert f'href="/datasets/documents/{document.code}/?chunk=1#mark">From field-guide.pdf, page 2</a>' in html
    for style in ("messages", "alpaca", "sharegpt"):
        assert f'href="/datasets/{dataset.code}/export/?style={style}"' in html
    assert 'action="/datasets/%s/curate/"' % dataset.code in html and 'action="/datasets/%s/import/"' % dataset.code in html
    assert 'action="/datasets/%s/freeze/"' % dataset.code in html and "Freeze a version" in html
    assert 'class="generate-form"' in html  # the generation options partial
    assert len(re.findall(r'id="([^"]+)"', html)) == len(set(re.findall(r'id="([^"]+)"', html)))  # no clashing form ids


def test_it_searches_and_paginates_keeping_the_search(alice_client, dataset):
    QAPair.objects.bulk_create(QAPair(dataset=dataset, question=f"Bridge question {i}?", answer=f"Bridge {i}.") for i in range(30))
    html = page_text(alice_client.get(f"/datasets/{dataset.code}/", {"q": "bridge"}))
    assert "30 pairs match “bridge”." in html and "Where does the Lumen valley lie?" not in html
    assert "Bridge question 24?" in html and "Bridge question 25?" not in html
    assert 'href="?q=bridge&amp;page=2#pairs"' in html
    second = page_text(alice_client.get(f"/datasets/{dataset.code}/", {"q": "bridge", "page": 2}))
    assert "Bridge question 29?" in second and "Page 2 of 2" in second
    assert "No pairs match." in page_text(alice_client.get(f"/datasets/{dataset.code}/", {"q": "zebra"}))


def test_it_shows_live_extraction_progress_for_pending_documents(alice_client, dataset):
    document = document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("notes.md", b"Some notes."), start=False)
    html = page_text(alice_client.get(f"/datasets/{dataset.code}/"))
    assert f'data-ws="/ws/jobs/{document.job.code}/"' in html and "data-reload-on-finish" in html


def test_it_adds_edits_and_deletes_pairs_from_the_pages(alice_client, dataset):
    response = alice_client.post(f"/datasets/{dataset.code}/pairs/add/", {"question": "Who lives there?", "answer": "Herders.",
                                                                          "system": "", "next_query": "q=herd"})
    pair = dataset.pairs.get(question="Who lives there?")
    assert response.status_code == 302 and response["Location"] == f"/datasets/{dataset.code}/?q=herd#pair-{pair.pk}"
    assert pair.source == QAPair.Source.MANUAL
    form = alice_client.get(f"/datasets/{dataset.code}/pairs/{pair.pk}/edit/")
    assert form.status_code == 200 and "Herders." in page_text(form)
    response = alice_client.post(f"/datasets/{dataset.code}/pairs/{pair.pk}/edit/",
                                 {"question": "Who lives in the valley?", "answer": "Goat herders.", "system": "Be brief."})
    assert response.status_code == 302
    pair.refresh_from_db()
    assert (pair.question, pair.answer, pair.system) == ("Who lives in the valley?", "Goat herders.", "Be brief.")
    bad = alice_client.post(f"/datasets/{dataset.code}/pairs/{pair.pk}/edit/", {"question": "", "answer": "x"})
    assert bad.status_code == 400 and "This field is required." in page_text(bad)
    assert alice_client.post(f"/datasets/{dataset.code}/pairs/{pair.pk}/delete/").status_code == 302
    assert not QAPair.objects.filter(pk=pair.pk).exists()


def test_it_shows_the_source_chunk_highlighted_inside_its_page(alice_client, dataset):
    document = dataset.documents.get()
    html = page_text(alice_client.get(f"/datasets/documents/{document.code}/", {"chunk": 1}))
    assert f'<mark id="mark">{PAGE_TWO.strip()}</mark>' in html
    assert "Chunk 2, page 2 (characters" in html and "The Lumen valley lies east" not in html
    page_one = page_text(alice_client.get(f"/datasets/documents/{document.code}/", {"page": 1}))
    assert "The Lumen valley lies east" in page_one and "Three rivers" not in page_one and "<mark" not in page_one
    assert "Pairs from this document" in html and "Which river is the widest?" in html
    assert alice_client.get(f"/datasets/documents/{document.code}/", {"chunk": 9}).status_code == 404


def test_it_starts_curation_and_lists_set_aside_pairs_with_a_way_back(alice_client, dataset):
    response = alice_client.post(f"/datasets/{dataset.code}/curate/", {
        "dedupe_exact": "on", "dedupe_near": "on", "near_threshold": "0.8", "min_question_chars": "10", "max_question_chars": "0",
        "min_answer_chars": "2", "max_answer_chars": "0", "judge_threshold": "7", "judge_provider": ""})
    job = Job.objects.get(kind=Job.Kind.CURATE)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.code}/"
    assert job.config["options"]["min_question_chars"] == 10 and job.config["options"]["judge"] is False
    live = page_text(alice_client.get(f"/datasets/{dataset.code}/"))
    assert f'data-ws="/ws/jobs/{job.code}/"' in live  # the running curation's progress panel
    dataset.pairs.filter(question__startswith="Which").update(excluded="near_duplicate", excluded_note="Nearly the same question as …")
    html = page_text(alice_client.get(f"/datasets/{dataset.code}/", {"show": "set-aside"}))
    assert "Which river is the widest?" in html and "Set aside: Near-duplicate question" in html and "Put all back" in html
    assert "Where does the Lumen valley lie?" not in html
    assert "Set aside (1)" in html and "In the dataset (3)" in html
    alice_client.post(f"/datasets/{dataset.code}/restore/")
    assert dataset.pairs.set_aside().count() == 0
    bad = alice_client.post(f"/datasets/{dataset.code}/curate/", {"near_threshold": "7", "min_question_chars": "0",
                                                                  "max_question_chars": "0", "min_answer_chars": "0",
                                                                  "max_answer_chars": "0", "judge_threshold": "7"}, follow=True)
    assert "Check the curation settings" in page_text(bad) and Job.objects.filter(kind=Job.Kind.CURATE).count() == 1


def test_it_imports_and_exports_from_the_pages(alice, alice_client, dataset):
    export = alice_client.get(f"/datasets/{dataset.code}/export/", {"style": "sharegpt"})
    assert export.status_code == 200 and export["Content-Disposition"] == 'attachment; filename="lumen-valley-sharegpt.jsonl"'
    data = b"".join(export.streaming_content)
    assert [json.loads(line)["conversations"][-1]["value"] for line in data.splitlines()] == [
        "East of the copper hills.", "Green.", "Three.", "The Amber river."]
    assert alice_client.get(f"/datasets/{dataset.code}/export/", {"style": "xml"}).status_code == 404
    other = dataset_with_pairs(alice, name="Copy", pairs=[("Seed?", "Yes.", "")])

    def import_from_page(fields) -> Job:
        """Post the import form: it answers with the job's page, whose live panel follows the import."""
        response = alice_client.post(f"/datasets/{other.code}/import/", fields)
        job = Job.objects.filter(kind=Job.Kind.IMPORT).latest("created_at")
        assert response.status_code == 302 and response["Location"] == f"/jobs/{job.code}/"
        assert other.pairs.count() == pairs_before  # nothing is parsed in the web request
        # While it runs, the dataset page shows the job's progress too.
        assert f'data-job="{job.code}"' in page_text(alice_client.get(f"/datasets/{other.code}/"))
        return run_job(job)

    pairs_before = other.pairs.count()
    job = import_from_page({"file": SimpleUploadedFile("lumen.jsonl", data)})
    assert job.status == Job.Status.SUCCEEDED and job.result["imported"] == 4 and other.pairs.count() == 5
    assert "Imported 4 examples from lumen.jsonl" in page_text(alice_client.get(f"/jobs/{job.code}/"))
    pairs_before = other.pairs.count()
    job = import_from_page({"file": SimpleUploadedFile("faq.csv", b"ask,tell\nOpen on Sunday?,No.\n"),
                            "question_column": "ask", "answer_column": "tell"})
    assert job.result["imported"] == 1 and other.pairs.filter(question="Open on Sunday?").exists()
    pairs_before = other.pairs.count()
    job = import_from_page({"file": SimpleUploadedFile("faq.csv", b"ask,tell\nA,B\n")})
    assert job.status == Job.Status.FAILED
    assert "its columns: ask, tell" in page_text(alice_client.get(f"/jobs/{job.code}/"))
    assert "its columns: ask, tell" in page_text(alice_client.get(f"/datasets/{other.code}/"))  # on the failed document
    neither = alice_client.post(f"/datasets/{other.code}/import/", {}, follow=True)
    assert "Choose a file or give a Hugging Face dataset id" in page_text(neither)


def test_it_freezes_shows_and_trains_on_a_version(alice_client, dataset):
    response = alice_client.post(f"/datasets/{dataset.code}/freeze/", {"note": "first cut"})
    version = DatasetVersion.objects.get(dataset=dataset)
    assert response.status_code == 302 and response["Location"] == f"/datasets/versions/{version.code}/"
    dataset.pairs.update(answer="Edited later.")
    html = page_text(alice_client.get(f"/datasets/versions/{version.code}/"))
    assert "version 1" in html and "first cut" in html and "East of the copper hills." in html and "Edited later." not in html
    assert f'href="/datasets/versions/{version.code}/export/?style=alpaca"' in html and "Train on this version" in html
    assert "Edited later." in page_text(alice_client.get(f"/datasets/{dataset.code}/"))
    alice_client.post(f"/datasets/versions/{version.code}/note/", {"note": "before curation"})
    version.refresh_from_db()
    assert version.note == "before curation"
    export = alice_client.get(f"/datasets/versions/{version.code}/export/", {"style": "alpaca"})
    assert b"Edited later." not in b"".join(export.streaming_content)
    response = alice_client.post(f"/datasets/versions/{version.code}/train/", training_form_data(max_steps=5))
    finetune = FineTune.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/{finetune.code}/"
    assert finetune.version == version and finetune.version.number == 1
    # The dataset page's own training form still freezes a fresh version first.
    alice_client.post(f"/datasets/{dataset.code}/train/", training_form_data(max_steps=5))
    assert FineTune.objects.latest("created_at").version.number == 2
    listing = page_text(alice_client.get(f"/datasets/{dataset.code}/"))
    assert f'href="/datasets/versions/{version.code}/">v1</a>' in listing


def test_it_answers_404_to_strangers_on_every_dataset_page(alice, dataset, client, bob, charlie):
    version = dataset_version_freeze(dataset=dataset)
    pair = dataset.pairs.first()
    document = dataset.documents.get()
    gets = [f"/datasets/{dataset.code}/", f"/datasets/{dataset.code}/export/?style=messages",
            f"/datasets/{dataset.code}/pairs/{pair.pk}/edit/", f"/datasets/versions/{version.code}/",
            f"/datasets/versions/{version.code}/export/?style=alpaca", f"/datasets/documents/{document.code}/",
            f"/datasets/documents/{document.code}/?chunk=0"]
    posts = [f"/datasets/{dataset.code}/pairs/add/", f"/datasets/{dataset.code}/pairs/{pair.pk}/edit/",
             f"/datasets/{dataset.code}/pairs/{pair.pk}/delete/", f"/datasets/{dataset.code}/pairs/{pair.pk}/restore/",
             f"/datasets/{dataset.code}/restore/", f"/datasets/{dataset.code}/curate/", f"/datasets/{dataset.code}/import/",
             f"/datasets/{dataset.code}/freeze/", f"/datasets/versions/{version.code}/note/",
             f"/datasets/versions/{version.code}/train/"]
    for stranger in (bob, charlie):
        client.force_login(stranger)
        for url in gets:
            assert client.get(url).status_code == 404, url
        for url in posts:
            data = training_form_data(question="Q?", answer="A.", note="x")
            assert client.post(url, data).status_code == 404, url
    assert dataset.pairs.count() == 4 and DatasetVersion.objects.count() == 1 and not FineTune.objects.exists()
    assert version.note == DatasetVersion.objects.get().note
    other = dataset_with_pairs(alice, name="Other")
    client.force_login(alice)
    assert client.get(f"/datasets/{other.code}/pairs/{pair.pk}/edit/").status_code == 404
