"""The document-to-model form on the dashboard and the pipeline API take a system prompt too."""
import pytest

from apps.core.models import Job
from apps.prompts.services import saved_prompt_create

pytestmark = pytest.mark.django_db
SAMPLE = b"The Lumen valley lies between two rivers. Its sky turns violet at dusk. The valley holds three villages."


def test_it_offers_only_the_owners_saved_prompts_on_the_dashboard(alice, bob, alice_client):
    saved_prompt_create(owner=alice, name="One word", text="Answer in one word.")
    saved_prompt_create(owner=bob, name="Bob's secret", text="Bob's own instructions.")
    page = alice_client.get("/").content.decode()
    assert "One word" in page and "Bob's secret" not in page and "Bob's own instructions." not in page


def test_it_carries_the_system_prompt_of_a_pipeline_started_through_the_api(alice_api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("valley.txt", SAMPLE, content_type="text/plain")
    response = alice_api.post("/api/v1/pipelines/", {"name": "Valley", "files": [upload],
                                                     "system_prompt": "Answer in one sentence."}, format="multipart")
    assert response.status_code == 202, response.content
    job = Job.objects.get(code=response.json()["code"])
    assert job.config["options"]["system_prompt"] == "Answer in one sentence."
