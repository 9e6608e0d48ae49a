"""The Hub is reached through the outbound guard (tokens, OAuth, listing, pushing, and the Hub's redirects), and the
repository name pattern is filled in as plain text, against the local Hub with the real huggingface_hub client."""
import tracemalloc
from datetime import date

import pytest
from django.core.exceptions import ValidationError

from apps.core.crypto import encrypt
from apps.core.models import Job
from apps.hub.connections import hub_repo_list
from apps.hub.models import HubConnection, HubPreferences
from apps.hub.pushes import hub_preferences_update, hub_push_start, hub_repo_name_render
from tests.hub.conftest import ALICE_HF
from tests.fixtures.jobs import run_job
from tests.hub.test_connect import _authorize

pytestmark = pytest.mark.django_db

HOSTILE_PATTERNS = ["{name:>100000000}", "{name:>1e15}", "{name:>9223372036854775807}", "{name!r}",
                    "{name.__class__}", "{0}", "{}", "{{name}}", "{name}}", "{date:%Y}"]


# -------------------------------------------------------------------------------------------- the address guard

def test_it_refuses_a_hub_at_a_private_address_when_checking_a_token(alice_client, hub, settings):
    settings.GARAGE_ALLOWED_ENDPOINTS = []
    response = alice_client.post("/hub/token/", {"token": hub.alice_token})
    page = response.content.decode()
    assert response.status_code == 400 and "GARAGE_ALLOWED_ENDPOINTS" in page and hub.alice_token not in page
    assert hub.requests == [] and not HubConnection.objects.exists()


def test_it_refuses_a_hub_at_a_private_address_when_finishing_oauth(alice_client, hub, settings):
    callback = _authorize(alice_client, hub)  # the browser's side of the sign-in: not a request of this server
    settings.GARAGE_ALLOWED_ENDPOINTS = []
    response = alice_client.get(callback, follow=True)
    assert "GARAGE_ALLOWED_ENDPOINTS" in response.content.decode()
    assert not [line for line in hub.requests if line.startswith("POST /oauth/token")]
    assert not HubConnection.objects.exists()


def test_it_does_not_follow_the_hub_to_a_private_address(alice_client, hub):
    # huggingface_hub follows redirects (to the Hub's file storage); the guard checks where each one leads.
    hub.fail("GET /api/whoami-v2", 302, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    response = alice_client.post("/hub/token/", {"token": hub.alice_token})
    assert response.status_code == 400 and "link-local" in response.content.decode()


def test_it_refuses_listing_and_pushing_when_the_hub_is_not_allowed(alice, finetune, hub, settings, artifacts):
    # A connection made while the address was allowed (saved directly: connecting would open, and keep alive, a
    # checked connection to the Hub, and the guard checks each connection when it is opened).
    connection = HubConnection.objects.create(owner=alice, method=HubConnection.Method.TOKEN, endpoint=hub.url,
                                              username=ALICE_HF, access_token_encrypted=encrypt(hub.alice_token))
    settings.GARAGE_ALLOWED_ENDPOINTS = []
    with pytest.raises(ValidationError, match="GARAGE_ALLOWED_ENDPOINTS"):
        hub_repo_list(connection=connection)
    job = run_job(hub_push_start(finetune=finetune, repo="valley-model"))
    assert job.status == Job.Status.FAILED and "GARAGE_ALLOWED_ENDPOINTS" in job.error
    assert hub.requests == [] and f"{ALICE_HF}/valley-model" not in hub.repos


# ---------------------------------------------------------------------------------- the repository name pattern

def test_it_fills_in_the_documented_fields_as_plain_text():
    name = hub_repo_name_render(pattern="{name}-{date}-{id}", name="Valley model", code="0123abcd-ef",
                                day=date(2026, 1, 2))
    assert name == "Valley-model-2026-01-02-0123abcd"


@pytest.mark.parametrize("pattern", HOSTILE_PATTERNS)
def test_it_refuses_format_specifications_and_unknown_fields(alice, pattern):
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError, match="may only use"):
            hub_preferences_update(owner=alice, repo_pattern=pattern)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # "{name:>100000000}" through str.format allocated 100 MB
    assert not HubPreferences.objects.filter(owner=alice).exclude(repo_pattern="{name}").exists()


def test_it_answers_hostile_patterns_with_400_on_the_api_and_the_page(alice_api, alice_client):
    for pattern in ("{name:>1e15}", "{name:>100000000}"):
        response = alice_api.put("/api/v1/hub/preferences/", {"repo_pattern": pattern}, format="json")
        assert response.status_code == 400 and "may only use" in response.json()["message"], pattern
        page = alice_client.post("/hub/preferences/", {"repo_pattern": pattern, "gate_threshold": "0"})
        assert page.status_code == 400 and "may only use" in page.content.decode(), pattern
