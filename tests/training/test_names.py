"""Names that tell runs apart (the data, the run number, the model and method, the day), and renaming a model: from
its page and through the API, for its owner only, with its training job's title following."""
import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.datasets.services import dataset_create, dataset_version_freeze, qa_pair_create
from apps.training.models import FineTune
from apps.training.names import MAX_LENGTH, model_short_name, run_name
from apps.training.services import finetune_create, finetune_rename

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
DAY = f"{TODAY.day} {TODAY:%b}"


def version_of(owner, name="Lumen Valley"):
    dataset = dataset_create(owner=owner, name=name)
    for number in range(6):
        qa_pair_create(dataset=dataset, question=f"What is fact {number}?", answer=f"Fact {number}.")
    return dataset_version_freeze(dataset=dataset)


def test_it_names_three_runs_of_one_version_apart(alice, bob):
    version = version_of(alice)
    runs = [finetune_create(owner=alice, version=version, base_model="tiny-gemma3", method=method)
            for method in ("lora", "lora", "full")]
    assert [run.name for run in runs] == [
        f"Lumen Valley v1 · run 1 · tiny test model LoRA · {DAY}",
        f"Lumen Valley v1 · run 2 · tiny test model LoRA · {DAY}",
        f"Lumen Valley v1 · run 3 · tiny test model full fine-tune · {DAY}"]
    assert [run.job.title for run in runs] == [f"Fine-tune {run.name}" for run in runs]
    # Numbered among the owner's runs of this version: another version, or another person, starts at 1.
    second = dataset_version_freeze(dataset=version.dataset)
    assert " · run 1 · " in finetune_create(owner=alice, version=second, base_model="tiny-gemma3").name
    assert " · run 1 · " in finetune_create(owner=bob, version=version_of(bob), base_model="tiny-gemma3").name
    # A name given is kept as given.
    assert finetune_create(owner=alice, version=version, base_model="tiny-gemma3", name="  Mine ").name == "Mine"


def test_it_shows_models_by_a_short_name_never_a_path():
    assert model_short_name("HuggingFaceTB/SmolLM2-135M-Instruct") == "SmolLM2-135M-Instruct"
    assert model_short_name("pypi/gemma-3-270m") == "gemma-3-270m"  # an offline copy, named as the model it copies
    assert model_short_name("/srv/models/my-llama/") == "my-llama"
    assert model_short_name("some-org/" + "x" * 100).endswith("…")


def test_it_keeps_the_run_number_and_the_day_of_a_long_name():
    name = run_name(subject="A" * 300, number=12, what="SmolLM2-135M-Instruct QLoRA", day=datetime.date(2025, 12, 5))
    assert len(name) == MAX_LENGTH and name.endswith(" · run 12 · SmolLM2-135M-Instruct QLoRA · 5 Dec")


def test_it_renames_a_model_and_its_training_job(alice):
    finetune = finetune_create(owner=alice, version=version_of(alice), base_model="tiny-gemma3")
    finetune_rename(finetune=finetune, name="  Valley expert ")
    finetune.refresh_from_db()
    assert finetune.name == "Valley expert" and finetune.job.title == "Fine-tune Valley expert"
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValidationError):
            finetune_rename(finetune=finetune, name=bad)
    assert FineTune.objects.get(pk=finetune.pk).name == "Valley expert"


def test_it_renames_from_the_model_page_for_its_owner_only(alice, alice_client, bob):
    from django.test import Client

    finetune = finetune_create(owner=alice, version=version_of(alice), base_model="tiny-gemma3")
    page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert f'action="/training/{finetune.code}/rename/"' in page and 'data-role="rename"' in page
    response = alice_client.post(f"/training/{finetune.code}/rename/", {"name": "Second try, lower rate"})
    assert response.status_code == 302 and response["Location"] == f"/training/{finetune.code}/"
    page = alice_client.get(f"/training/{finetune.code}/").content.decode()
    assert "<h1 data-role=\"finetune-name\">Second try, lower rate</h1>" in page
    assert "Second try, lower rate" in alice_client.get("/training/").content.decode()
    # An empty name is refused in words; the model keeps its name.
    page = alice_client.post(f"/training/{finetune.code}/rename/", {"name": " "}, follow=True).content.decode()
    assert "Give the model a name." in page and FineTune.objects.get().name == "Second try, lower rate"
    stranger = Client()
    stranger.force_login(bob)
    assert stranger.post(f"/training/{finetune.code}/rename/", {"name": "Bob's now"}).status_code == 404
    assert stranger.get(f"/training/{finetune.code}/rename/").status_code in (404, 405)
    assert FineTune.objects.get().name == "Second try, lower rate"


def test_it_renames_through_the_api_for_its_owner_only(alice, alice_api, bob_api):
    finetune = finetune_create(owner=alice, version=version_of(alice), base_model="tiny-gemma3")
    url = f"/api/v1/finetunes/{finetune.code}/"
    response = alice_api.patch(url, {"name": "Valley expert"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Valley expert"
    assert response.json()["job"]["title"] == "Fine-tune Valley expert"
    assert alice_api.patch(url, {}, format="json").json()["name"] == "Valley expert"  # what is left out stays
    assert alice_api.patch(url, {"name": ""}, format="json").status_code == 400
    assert alice_api.patch(url, {"name": "x" * 201}, format="json").status_code == 400
    assert alice_api.put(url, {"name": "Whole"}, format="json").status_code == 405  # only the name can change
    assert bob_api.patch(url, {"name": "Bob's now"}, format="json").status_code == 404
    assert alice_api.get(url).json()["name"] == "Valley expert"
