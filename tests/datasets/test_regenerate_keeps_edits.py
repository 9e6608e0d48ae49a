"""Generating pairs again replaces what a generator made, but never a pair a person edited or wrote."""
import pytest

from apps.datasets.models import QAPair
from apps.datasets.services import qa_generate_start
from tests.datasets.curation_helpers import dataset_with_pairs
from tests.fixtures.jobs import run_job

pytestmark = pytest.mark.django_db


def test_it_keeps_pairs_edited_or_added_by_hand_when_pairs_are_generated_again(alice, alice_api, alice_client):
    dataset = dataset_with_pairs(alice)
    first, second, untouched, _ = dataset.pairs.order_by("id")
    url = f"/api/v1/datasets/{dataset.code}/pairs/"
    edited = alice_api.patch(f"{url}{first.pk}/", {"answer": "East of the copper hills, says the guide."}, format="json")
    assert edited.status_code == 200 and edited.json()["edited"] is True
    assert alice_client.post(f"/datasets/{dataset.code}/pairs/{second.pk}/edit/",
                             {"question": "What colour is the dusk sky?", "answer": "Green.", "system": ""}).status_code == 302
    added = alice_api.post(url, {"question": "Who maps the valley?", "answer": "The guild."}, format="json")
    assert added.status_code == 201 and added.json()["edited"] is False and added.json()["source"] == "manual"
    unchanged = alice_api.patch(f"{url}{untouched.pk}/", {"answer": untouched.answer}, format="json")
    assert unchanged.json()["edited"] is False  # saving the same text is not an edit
    page = alice_client.get(f"/datasets/{dataset.code}/").content.decode()
    assert "keeps the 3 pairs you edited or wrote by hand" in page and page.count(">edited by hand</span>") == 2

    job = run_job(qa_generate_start(dataset=dataset))
    assert job.status == "succeeded", job.error_message
    assert job.result["kept_by_hand"] == 3
    assert job.events.filter(data__line="Kept 3 pairs edited or written by hand").exists()
    kept = {p.pk: (p.question, p.answer) for p in dataset.pairs.filter(pk__in=[first.pk, second.pk, added.json()["id"]])}
    assert kept == {first.pk: ("Where does the Lumen valley lie?", "East of the copper hills, says the guide."),
                    second.pk: ("What colour is the dusk sky?", "Green."),
                    added.json()["id"]: ("Who maps the valley?", "The guild.")}
    # The generated pairs nobody touched were replaced by new ones.
    assert not dataset.pairs.filter(pk=untouched.pk).exists()
    assert dataset.pairs.filter(source=QAPair.Source.EXTRACTIVE, edited=False).exists()
