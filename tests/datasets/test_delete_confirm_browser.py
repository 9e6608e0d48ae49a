"""Deleting a dataset in headless Chromium: the browser asks first, naming what is lost; dismissing keeps the
dataset, accepting deletes it."""
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Dataset
from apps.datasets.services import dataset_create, dataset_version_freeze, document_upload, qa_pair_create
from tests.browser import BROWSER_TEST

pytestmark = BROWSER_TEST


def test_it_deletes_a_dataset_only_once_the_question_is_accepted(alice, server, browser_context, session_cookie):
    dataset = dataset_create(owner=alice, name="Lumen Valley")
    document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("notes.txt", b"The valley has three rivers."),
                    start=False)
    qa_pair_create(dataset=dataset, question="How many rivers?", answer="Three.")
    qa_pair_create(dataset=dataset, question="What is the valley called?", answer="Lumen Valley.")
    dataset_version_freeze(dataset=dataset)
    browser_context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": server}])
    page = browser_context.new_page()
    page.goto(f"{server}/datasets/{dataset.code}/")
    page.click("#delete summary")
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.click("form[data-role=dataset-delete] button")
    page.wait_for_function("() => document.readyState === 'complete'")
    assert questions == ["Delete the dataset “Lumen Valley” with its 1 document, 2 pairs and 1 frozen version? "
                         "This cannot be undone."]
    page.wait_for_timeout(500)  # time for a form that was sent anyway to arrive
    assert page.url == f"{server}/datasets/{dataset.code}/"
    assert Dataset.objects.filter(pk=dataset.pk).exists()

    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.click("form[data-role=dataset-delete] button")
    page.wait_for_url(f"{server}/datasets/")
    assert len(questions) == 2
    assert "Deleted the dataset" in page.locator(".messages").inner_text()
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
