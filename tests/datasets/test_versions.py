"""Frozen versions: they never change, training names one, and only their owner sees them."""
import json

import pytest
from rest_framework.test import APIClient

from apps.datasets.models import DatasetVersion, QAPair
from apps.training.models import FineTune
from tests.datasets.curation_helpers import dataset_with_pairs

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(alice):
    return dataset_with_pairs(alice)


def freeze(api, dataset, note=""):
    response = api.post(f"/api/v1/datasets/{dataset.code}/versions/", {"note": note}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_it_freezes_numbered_versions_of_the_included_pairs(alice_api, dataset):
    QAPair.objects.filter(dataset=dataset, question__startswith="Which").update(excluded="near_duplicate")
    first = freeze(alice_api, dataset, "first cut")
    assert (first["number"], first["note"], first["example_count"], first["dataset"]) == (1, "first cut", 3, str(dataset.code))
    second = freeze(alice_api, dataset)
    assert second["number"] == 2
    listed = alice_api.get(f"/api/v1/datasets/{dataset.code}/versions/").json()["results"]
    assert [v["number"] for v in listed] == [2, 1]
    assert [v["code"] for v in alice_api.get("/api/v1/versions/", {"dataset": str(dataset.code)}).json()["results"]] == \
        [second["code"], first["code"]]
    examples = alice_api.get(f"/api/v1/versions/{first['code']}/examples/").json()["results"]
    assert [e["question"] for e in examples] == ["Where does the Lumen valley lie?", "What colour is the sky at dusk?",
                                                 "How many rivers cross the valley?"]
    assert examples[1]["system"] == "Answer in one word." and examples[2]["page"] == 2
    assert examples[2]["document"] == str(dataset.documents.get().code)


def test_it_keeps_a_frozen_version_unchanged_when_pairs_change_later(alice_api, dataset):
    version = freeze(alice_api, dataset)
    before = alice_api.get(f"/api/v1/versions/{version['code']}/export/", {"style": "messages"})
    before_text = b"".join(before.streaming_content)
    pair = dataset.pairs.get(question="How many rivers cross the valley?")
    alice_api.patch(f"/api/v1/datasets/{dataset.code}/pairs/{pair.pk}/", {"answer": "Four, since the flood."}, format="json")
    alice_api.delete(f"/api/v1/datasets/{dataset.code}/pairs/{dataset.pairs.first().pk}/")
    alice_api.post(f"/api/v1/datasets/{dataset.code}/pairs/", {"question": "New?", "answer": "Yes."}, format="json")
    after_text = b"".join(alice_api.get(f"/api/v1/versions/{version['code']}/export/", {"style": "messages"}).streaming_content)
    assert after_text == before_text
    answers = [json.loads(line)["messages"][-1]["content"] for line in after_text.decode().splitlines()]
    assert answers == ["East of the copper hills.", "Green.", "Three.", "The Amber river."]
    current = b"".join(alice_api.get(f"/api/v1/datasets/{dataset.code}/export/").streaming_content).decode()
    assert "Four, since the flood." in current and "East of the copper hills." not in current
    assert DatasetVersion.objects.get(code=version["code"]).example_count == 4


def test_it_changes_only_the_note_of_a_version(alice_api, dataset):
    version = freeze(alice_api, dataset, "draft")
    response = alice_api.patch(f"/api/v1/versions/{version['code']}/", {"note": "curated", "number": 9, "example_count": 0},
                               format="json")
    assert response.status_code == 200 and response.json()["note"] == "curated"
    stored = DatasetVersion.objects.get(code=version["code"])
    assert (stored.note, stored.number, stored.example_count) == ("curated", 1, 4)
    assert alice_api.put(f"/api/v1/versions/{version['code']}/", {"note": "x"}, format="json").status_code == 405


def test_it_refuses_to_freeze_an_empty_dataset(alice_api):
    code = alice_api.post("/api/v1/datasets/", {"name": "Empty"}, format="json").json()["code"]
    response = alice_api.post(f"/api/v1/datasets/{code}/versions/", {}, format="json")
    assert response.status_code == 400 and "no question-answer pairs" in response.json()["message"]


def test_it_trains_on_a_named_frozen_version(alice, alice_api, dataset):
    version = freeze(alice_api, dataset)
    pair = dataset.pairs.first()
    alice_api.patch(f"/api/v1/datasets/{dataset.code}/pairs/{pair.pk}/", {"answer": "Changed after freezing."}, format="json")
    response = alice_api.post("/api/v1/finetunes/", {"version": version["code"], "options": {"max_steps": 5}}, format="json")
    assert response.status_code == 201, response.content
    finetune = FineTune.objects.get(code=response.json()["code"])
    assert str(finetune.version.code) == version["code"] and finetune.version.number == 1
    assert "Changed after freezing." not in list(finetune.version.examples.values_list("answer", flat=True))
    # Training from the dataset freezes a new version first, so it too names a frozen version.
    response = alice_api.post("/api/v1/finetunes/", {"dataset": str(dataset.code)}, format="json")
    trained = FineTune.objects.get(code=response.json()["code"]).version
    assert trained.number == 2 and "Changed after freezing." in list(trained.examples.values_list("answer", flat=True))


def test_it_hides_versions_from_strangers(alice_api, bob, bob_api, charlie, dataset):
    version = freeze(alice_api, dataset)
    charlie_api = APIClient()
    charlie_api.force_authenticate(charlie)
    for client in (bob_api, charlie_api):
        for url in (f"/api/v1/versions/{version['code']}/", f"/api/v1/versions/{version['code']}/examples/",
                    f"/api/v1/versions/{version['code']}/export/", f"/api/v1/datasets/{dataset.code}/versions/",
                    f"/api/v1/datasets/{dataset.code}/export/?version=1"):
            assert client.get(url).status_code == 404, url
        assert client.patch(f"/api/v1/versions/{version['code']}/", {"note": "mine"}, format="json").status_code == 404
        assert client.post(f"/api/v1/datasets/{dataset.code}/versions/", {}, format="json").status_code == 404
        assert client.post("/api/v1/finetunes/", {"version": version["code"]}, format="json").status_code == 404
        assert client.get("/api/v1/versions/").json()["results"] == []
        assert client.get("/api/v1/versions/", {"dataset": str(dataset.code)}).json()["results"] == []
    assert DatasetVersion.objects.get().note == "" and DatasetVersion.objects.count() == 1
    assert not FineTune.objects.exists()


def test_it_shows_versions_and_their_examples_read_only_in_the_admin(client, alice, dataset):
    from apps.accounts.models import User
    from apps.datasets.services import dataset_version_freeze

    version = dataset_version_freeze(dataset=dataset, note="for the admin")
    dataset.pairs.filter(question__startswith="Which").update(excluded="low_rating")
    client.force_login(User.objects.create_superuser(email="root@example.com", password="an admin passphrase"))
    listing = client.get("/admin/datasets/datasetversion/?q=for+the+admin").content.decode()
    assert "Lumen valley v1" in listing and "for the admin" in listing
    page = client.get(f"/admin/datasets/datasetversion/{version.pk}/change/").content.decode()
    assert "What colour is the sky at dusk?" in page and 'name="examples-0-question"' not in page
    assert client.get("/admin/datasets/datasetversion/add/").status_code == 403
    aside = client.get("/admin/datasets/qapair/?excluded__exact=low_rating").content.decode()
    assert "Which river is the widest?" in aside and "Where does the Lumen valley lie?" not in aside


def test_it_holds_out_the_same_questions_in_every_version_and_repeats_together(alice_api, alice):
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.create(owner=alice, name="Facts")
    questions = [f"What is fact number {i}?" for i in range(40)] + ["What is fact number 3?"] * 3  # repeats
    QAPair.objects.bulk_create(QAPair(dataset=dataset, question=q, answer=f"Answer {i}.", source="manual")
                               for i, q in enumerate(questions))
    first = freeze(alice_api, dataset)
    assert first["heldout_count"] >= 4  # a tenth of 43, or more when a repeated question falls in
    second = freeze(alice_api, dataset)

    def split(version):
        examples = alice_api.get(f"/api/v1/versions/{version['code']}/examples/", {"page_size": 100}).json()["results"]
        return {e["question"] for e in examples if e["split"] == "heldout"}, \
            {e["question"] for e in examples if e["split"] == "train"}

    heldout, train = split(first)
    assert heldout and not heldout & train  # a question is never on both sides, even repeated
    assert split(second) == (heldout, train)  # and on the same side in every version
    none = alice_api.post(f"/api/v1/datasets/{dataset.code}/versions/", {"heldout_ratio": 0}, format="json").json()
    assert none["heldout_count"] == 0
    refused = alice_api.post(f"/api/v1/datasets/{dataset.code}/versions/", {"heldout_ratio": 0.9}, format="json")
    assert refused.status_code == 400


def test_it_holds_out_recall_phrasings_of_trained_facts_and_whole_unseen_facts(alice_api, alice):
    from apps.datasets.models import Dataset, VersionExample

    dataset = Dataset.objects.create(owner=alice, name="Cities")
    QAPair.objects.bulk_create(
        QAPair(dataset=dataset, question=template.format(i=i), answer=f"{1000 + i}", fact=f"city-{i}", source="manual")
        for i in range(40) for template in ("When was city {i} founded?", "In what year was city {i} founded?",
                                            "City {i} was founded in which year?"))
    first = freeze(alice_api, dataset)
    version = DatasetVersion.objects.get(code=first["code"])
    by_fact = {}
    for example in version.examples.all():
        by_fact.setdefault(example.fact, []).append(example.split)
    unseen = [f for f, splits in by_fact.items() if VersionExample.Split.HELDOUT in splits]
    recall = [f for f, splits in by_fact.items() if VersionExample.Split.RECALL in splits]
    # An unseen fact is held out with every phrasing; a recall fact keeps its other phrasings in training.
    assert unseen and all(by_fact[f] == [VersionExample.Split.HELDOUT] * 3 for f in unseen)
    assert all(sorted(by_fact[f]) == ["recall", "train", "train"] for f in recall)
    assert len(recall) == int((40 - len(unseen)) * 0.3) and not set(unseen) & set(recall)
    assert first["heldout_count"] == 3 * len(unseen) + len(recall) and first["recall_count"] == len(recall)
    # The same facts and the same phrasings are held out in every version.
    again = DatasetVersion.objects.get(code=freeze(alice_api, dataset)["code"])
    assert list(again.examples.values_list("question", "split")) == list(version.examples.values_list("question", "split"))


def test_it_holds_out_nothing_for_recall_when_no_fact_is_asked_twice(alice):
    from workers.common.splits import evaluation_splits

    examples = [(f"Question {i}?", "") for i in range(20)]
    splits = evaluation_splits(examples, unseen_ratio=0.1, recall_ratio=0.3)
    assert set(splits.values()) == {"heldout"} and len(splits) == 2
    assert evaluation_splits(examples[:4], unseen_ratio=0.1, recall_ratio=0.3) == {}  # too few to hold anything out
