import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.models import Document

pytestmark = pytest.mark.django_db


def test_it_creates_a_dataset_and_uploads_a_document(alice_api):
    created = alice_api.post("/api/v1/datasets/", {"name": "Notes", "description": "Facts"}, format="json")
    assert created.status_code == 201 and created.json()["name"] == "Notes"
    code = created.json()["code"]
    upload = alice_api.post(f"/api/v1/datasets/{code}/documents/", {"file": SimpleUploadedFile("a.md", b"The sky is green.")},
                            format="multipart")
    assert upload.status_code == 201, upload.content
    body = upload.json()
    assert body["filename"] == "a.md" and body["status"] == "pending" and body["job"]
    assert alice_api.get(f"/api/v1/jobs/{body['job']}/").json()["kind"] == "extract"
    listed = alice_api.get("/api/v1/datasets/").json()["results"]
    assert [(d["name"], d["document_count"]) for d in listed] == [("Notes", 1)]


def test_it_answers_400_with_a_readable_message_for_bad_uploads(alice_api):
    code = alice_api.post("/api/v1/datasets/", {"name": "Notes"}, format="json").json()["code"]
    for upload, message in [(SimpleUploadedFile("x.exe", b"MZ"), "not supported"),
                            (SimpleUploadedFile("big.txt", b"a" * 2048), "upload limit")]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("django.conf.settings.GARAGE_MAX_UPLOAD_BYTES", 1024)
            response = alice_api.post(f"/api/v1/datasets/{code}/documents/", {"file": upload}, format="multipart")
        assert response.status_code == 400 and message in response.json()["message"]
    assert not Document.objects.exists()
    assert alice_api.post("/api/v1/datasets/", {"name": ""}, format="json").status_code == 400


def test_it_refuses_to_generate_or_train_without_material(alice_api):
    code = alice_api.post("/api/v1/datasets/", {"name": "Empty"}, format="json").json()["code"]
    response = alice_api.post(f"/api/v1/datasets/{code}/generate/")
    assert response.status_code == 400 and "Upload a document" in response.json()["message"]
    response = alice_api.post("/api/v1/finetunes/", {"dataset": code}, format="json")
    assert response.status_code == 400 and "no question-answer pairs" in response.json()["message"]
    response = alice_api.post("/api/v1/finetunes/", {"dataset": code, "options": {"max_steps": 0}}, format="json")
    assert response.status_code == 400


def test_it_serves_the_openapi_schema_and_docs(alice_api, alice_client):
    schema = alice_api.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/pipelines/", "/api/v1/jobs/{code}/cancel/", "/api/v1/datasets/{code}/documents/"} <= set(paths)
    docs = alice_client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower() and b"cdn" not in docs.content.lower()


def test_it_names_an_empty_upload_in_its_message(alice_api):
    code = alice_api.post("/api/v1/datasets/", {"name": "Notes"}, format="json").json()["code"]
    response = alice_api.post(f"/api/v1/datasets/{code}/documents/", {"file": SimpleUploadedFile("notes.txt", b"")},
                              format="multipart")
    assert response.status_code == 400 and response.json()["message"] == "'notes.txt' is empty."
