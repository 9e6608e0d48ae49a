"""Inputs a fuzzer sent to the dataset endpoints that once answered 500: garbage filter values, names over the
length limit, NUL bytes. Each now answers 400 (or an empty list) with a readable message."""
import pytest

from apps.datasets.models import Dataset
from apps.datasets.services import dataset_create, dataset_version_freeze
from tests.datasets.curation_helpers import dataset_with_pairs

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["zzz", "1", "00000000-0000-0000-0000-00000000000Z", "x" * 300])
def test_it_answers_an_unknown_or_garbage_dataset_filter_with_an_empty_list(alice, alice_api, value):
    dataset_version_freeze(dataset=dataset_with_pairs(alice))
    response = alice_api.get(f"/api/v1/versions/?dataset={value}")
    assert response.status_code == 200, response.content
    assert response.json()["results"] == [] and response.json()["count"] == 0
    assert alice_api.get("/api/v1/versions/").json()["count"] == 1


def test_it_refuses_names_over_the_length_limit_readably(alice, alice_api, alice_client):
    long = alice_api.post("/api/v1/datasets/", {"name": "n" * 201}, format="json")
    assert long.status_code == 400 and "200 characters" in str(long.json())
    with pytest.raises(Exception, match="longer than 200 characters"):
        dataset_create(owner=alice, name="n" * 201)
    version = dataset_version_freeze(dataset=dataset_with_pairs(alice))
    note = alice_api.patch(f"/api/v1/versions/{version.code}/", {"note": "n" * 301}, format="json")
    assert note.status_code == 400 and "300 characters" in str(note.json())
    freeze = alice_api.post(f"/api/v1/datasets/{version.dataset.code}/versions/", {"note": "n" * 301}, format="json")
    assert freeze.status_code == 400 and "300 characters" in str(freeze.json())
    page = alice_client.post("/datasets/", {"name": "n" * 201})
    assert page.status_code == 200 and "at most 200 characters" in page.content.decode()
    assert not Dataset.objects.filter(name__startswith="nnn").exists()


@pytest.mark.parametrize("path, params", [
    ("/api/v1/datasets/{code}/pairs/", {"search": "sky\x00"}),
    ("/api/v1/datasets/{code}/export/", {"style": "messages\x00"}),
    ("/api/v1/datasets/{code}/export/", {"version": "1\x00"}),
    ("/api/v1/versions/", {"dataset": "{code}\x00"}),
    ("/api/v1/versions/{version}/examples/", {"search": "\x00"}),
    ("/api/v1/versions/{version}/export/", {"style": "\x00"}),
])
def test_it_answers_400_to_nul_bytes_in_query_parameters(alice, alice_api, path, params):
    dataset = dataset_with_pairs(alice)
    version = dataset_version_freeze(dataset=dataset)
    params = {k: v.format(code=dataset.code) for k, v in params.items()}
    response = alice_api.get(path.format(code=dataset.code, version=version.code), params)
    assert response.status_code == 400, response.content
    assert "NUL" in response.json()["message"]


@pytest.mark.parametrize("body", [
    {"name": "Sky\x00"},
    {"name": "Sky", "description": "blue\x00"},
])
def test_it_answers_400_to_nul_bytes_in_dataset_fields(alice_api, body):
    response = alice_api.post("/api/v1/datasets/", body, format="json")
    assert response.status_code == 400, response.content
    assert not Dataset.objects.exists()


def test_it_answers_400_to_nul_bytes_in_an_import_mapping_or_hub_fields(alice, alice_api):
    dataset = dataset_with_pairs(alice)
    url = f"/api/v1/datasets/{dataset.code}/import/"
    for body in ({"hub_id": "acme/sums", "mapping": {"question": "q\x00", "answer": "a"}},
                 {"hub_id": "acme/sums\x00"}, {"hub_id": "acme/sums", "split": "train\x00"},
                 {"hub_id": "acme/sums", "config": "\x00"}):
        response = alice_api.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
