"""Deleting a dataset removes its stored files and answers 409, naming them, while models trained on it remain;
downloads name their file through Django's Content-Disposition builder."""
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Chunk, Dataset, DatasetVersion, Document, QAPair
from apps.datasets.services import dataset_create, dataset_import_file_start, dataset_version_freeze, document_upload
from apps.training.models import FineTune
from tests.datasets.curation_helpers import dataset_with_pairs

pytestmark = pytest.mark.django_db


def stored_files(dataset) -> list[Path]:
    return [Path(document.file.path) for document in dataset.documents.exclude(file="")]


@pytest.fixture
def dataset(alice):
    dataset = dataset_with_pairs(alice)
    document_upload(dataset=dataset, uploaded_file=SimpleUploadedFile("notes.txt", b"The valley has three rivers."), start=False)
    dataset_import_file_start(dataset=dataset, uploaded_file=SimpleUploadedFile("faq.jsonl", b'{"question": "Q?", "answer": "A."}\n'),
                              start=False)
    dataset_version_freeze(dataset=dataset)
    files = stored_files(dataset)
    assert len(files) == 3 and all(path.is_file() for path in files)
    return dataset


def test_it_deletes_a_dataset_with_its_stored_files(alice_api, dataset, django_capture_on_commit_callbacks):
    files = stored_files(dataset)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.delete(f"/api/v1/datasets/{dataset.code}/")
    assert response.status_code == 204
    assert not any(path.exists() for path in files)
    assert not Dataset.objects.exists() and not Document.objects.exists() and not Chunk.objects.exists()
    assert not QAPair.objects.exists() and not DatasetVersion.objects.exists()


def test_it_deletes_from_the_page(alice_client, dataset, django_capture_on_commit_callbacks):
    files = stored_files(dataset)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/datasets/{dataset.code}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/datasets/" and "Deleted the dataset" in response.content.decode()
    assert not Dataset.objects.exists() and not any(path.exists() for path in files)


def test_it_answers_409_naming_the_fine_tunes_that_block_a_delete(alice, alice_api, alice_client, dataset,
                                                                 django_capture_on_commit_callbacks):
    version = dataset.versions.get()
    FineTune.objects.create(owner=alice, name="Valley tune", dataset=dataset, version=version, base_model="tiny")
    FineTune.objects.create(owner=alice, name="Second <try>", dataset=dataset, version=version, base_model="tiny")
    files = stored_files(dataset)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.delete(f"/api/v1/datasets/{dataset.code}/")
    assert response.status_code == 409, response.content
    assert response.json()["blocked_by"] == ["tuned model 'Second <try>'", "tuned model 'Valley tune'"]
    assert "cannot be deleted while models trained on it remain" in response.json()["message"]
    with django_capture_on_commit_callbacks(execute=True):
        page = alice_client.post(f"/datasets/{dataset.code}/delete/", follow=True)
    html = page.content.decode()
    assert page.redirect_chain[-1][0] == f"/datasets/{dataset.code}/#delete"
    assert "tuned model &#x27;Second &lt;try&gt;&#x27;, tuned model &#x27;Valley tune&#x27;. Delete them first." in html
    assert Dataset.objects.filter(pk=dataset.pk).exists() and all(path.is_file() for path in files)


def test_strangers_cannot_delete_a_dataset(dataset, bob_api, client, bob, charlie):
    assert bob_api.delete(f"/api/v1/datasets/{dataset.code}/").status_code == 404
    for stranger in (bob, charlie):
        client.force_login(stranger)
        assert client.post(f"/datasets/{dataset.code}/delete/").status_code == 404
    assert Dataset.objects.filter(pk=dataset.pk).exists() and all(path.is_file() for path in stored_files(dataset))


def test_downloads_name_any_dataset_through_content_disposition(alice, alice_api, alice_client):
    dataset = dataset_with_pairs(alice, name="Données 東京")
    version = dataset_version_freeze(dataset=dataset)
    expected = "attachment; filename*=utf-8''donn%C3%A9es-%E6%9D%B1%E4%BA%AC-{}.jsonl"
    assert alice_api.get(f"/api/v1/datasets/{dataset.code}/export/")["Content-Disposition"] == expected.format("messages")
    assert alice_client.get(f"/datasets/{dataset.code}/export/?style=alpaca")["Content-Disposition"] == expected.format("alpaca")
    assert alice_api.get(f"/api/v1/versions/{version.code}/export/")["Content-Disposition"] == expected.format("v1-messages")
    assert alice_client.get(f"/datasets/versions/{version.code}/export/?style=sharegpt")["Content-Disposition"] == \
        expected.format("v1-sharegpt")
    plain = dataset_create(owner=alice, name="Plain")
    assert alice_api.get(f"/api/v1/datasets/{plain.code}/export/")["Content-Disposition"] == \
        'attachment; filename="plain-messages.jsonl"'
