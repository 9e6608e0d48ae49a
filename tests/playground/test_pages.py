"""The playground page and the model ids behind it, with alice (owner) and bob (stranger)."""
import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.playground.jobs import chat_model_ref
from apps.playground.selectors import chat_model_get_for_user, chat_model_list_for_user
from apps.playground.services import inference_messages, inference_options
from tests.fixtures.models import STANDIN_ID, STANDIN_LABEL, no_real_models, standin_model  # noqa: F401
from tests.playground.conftest import make_finetune
from workers.engine import inference

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(tmp_path):
    """Pages and ids never load the model: an empty folder stands in for the trained one."""
    folder = tmp_path / "trained"
    folder.mkdir()
    return folder


def test_it_shows_the_newest_tuned_model_beside_its_base(alice_client, alice_model):
    response = alice_client.get("/playground/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-model="{alice_model.code}"' in page and f'data-model="tiny-gemma3@{alice_model.code}"' in page
    assert "Valley model" in page and "Send to all models" in page and 'data-role="stop"' in page


def test_it_shows_the_chosen_models_only(alice, alice_client, alice_model, trained):
    other = make_finetune(alice, trained, name="Second model")
    response = alice_client.get(f"/playground/?model={other.code}")
    page = response.content.decode()
    assert page.count('data-role="column"') == 1 and f'data-model="{other.code}"' in page
    assert f'value="{alice_model.code}"' in page  # still offered in the picker


def test_it_explains_what_to_do_without_finished_models(alice, alice_client, trained, no_real_models):
    make_finetune(alice, trained, finished=False)
    response = alice_client.get("/playground/")
    assert response.status_code == 200 and 'data-role="empty"' in response.content.decode()
    assert "finished training" in response.content.decode()


def test_it_answers_404_to_a_stranger_asking_for_someones_model(bob_client, alice_model):
    assert bob_client.get(f"/playground/?model={alice_model.code}").status_code == 404
    assert bob_client.get(f"/playground/?model=tiny-gemma3@{alice_model.code}").status_code == 404
    assert bob_client.get("/playground/").status_code == 200  # his own (empty) playground


def test_it_asks_visitors_to_sign_in(client):
    response = client.get("/playground/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_names_models_with_stable_readable_ids(alice, bob, alice_model, trained, no_real_models):
    gemma = make_finetune(alice, trained, name="Gemma model", base_model="gemma-3-1b-it")
    make_finetune(alice, trained, name="Gemma model 2", base_model="gemma-3-1b-it")
    unfinished = make_finetune(alice, trained, name="Still training", finished=False)
    ids = [m.id for m in chat_model_list_for_user(user=alice)]
    assert ids.count("gemma-3-1b-it") == 1  # one base model, however many fine-tunes started from it
    assert str(gemma.code) in ids and str(alice_model.code) in ids and f"tiny-gemma3@{alice_model.code}" in ids
    assert str(unfinished.code) not in ids
    assert chat_model_get_for_user(user=alice, model_id="gemma-3-1b-it").kind == "base"
    tuned = chat_model_get_for_user(user=alice, model_id=str(alice_model.code))
    assert chat_model_ref(tuned).adapter.endswith("model") and tuned.kind == "tuned"
    for model_id in [str(alice_model.code), f"tiny-gemma3@{alice_model.code}", "gemma-3-1b-it", str(unfinished.code),
                     "tiny-gemma3", "tiny-gemma3@not-a-uuid", ""]:
        with pytest.raises(Http404):
            chat_model_get_for_user(user=bob if model_id != str(unfinished.code) else alice, model_id=model_id)
    assert chat_model_list_for_user(user=bob) == []


def test_it_checks_sampling_settings_and_messages():
    assert inference_options({}) == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256, "seed": 0}
    assert inference_options({"temperature": "0.7", "top_p": 0.9, "max_tokens": "12"})["max_tokens"] == 12
    for bad, field in [({"temperature": 3}, "temperature"), ({"top_p": 0}, "top_p"), ({"max_tokens": 0}, "max_tokens"),
                       ({"max_tokens": 10**6}, "max_tokens"), ({"temperature": "warm"}, "temperature")]:
        with pytest.raises(ValidationError) as error:
            inference_options(bad)
        assert error.value.code == field
    assert inference_messages([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]) == [{"role": "user", "content": "hi"}]
    for bad in [None, [], [{"role": "robot", "content": "x"}], [{"role": "user", "content": 3}],
                [{"role": "user", "content": "x" * 300_000}]]:
        with pytest.raises(ValidationError):
            inference_messages(bad)


def test_it_answers_with_an_installed_pypi_copy_that_no_fine_tune_started_from(alice, bob, alice_client, standin_model,
                                                                            settings):
    for user in (alice, bob):  # installed models are everyone's to try
        listed = {m.id: m for m in chat_model_list_for_user(user=user)}
        assert listed[STANDIN_ID].label == STANDIN_LABEL and listed[STANDIN_ID].kind == "base"
    model = chat_model_get_for_user(user=alice, model_id=STANDIN_ID)
    ref = chat_model_ref(model)
    assert model.finetune is None and ref.path == str(settings.GARAGE_MODELS_DIR / "pypi--standin-model")
    usage = {}
    answer = "".join(inference.stream(ref, [{"role": "user", "content": "Where does item1 live?"}], max_new_tokens=3,
                                      usage=usage))
    assert isinstance(answer, str) and usage["completion_tokens"] >= 1
    page = alice_client.get(f"/playground/?model={STANDIN_ID}").content.decode()
    assert f'data-model="{STANDIN_ID}"' in page and STANDIN_LABEL in page
    for unknown in ("pypi/not-installed", "google/not-in-the-catalogue"):
        with pytest.raises(Http404):
            chat_model_get_for_user(user=alice, model_id=unknown)


def test_it_opens_on_the_default_real_model_without_tuned_models(alice, alice_client, standin_model):
    from apps.playground.selectors import chat_model_default_ids
    from apps.training.model_choices import default_model_choice

    page = alice_client.get("/playground/").content.decode()
    assert 'data-role="empty"' not in page and f'value="{STANDIN_ID}"' in page  # offered in the picker
    default = default_model_choice()
    ids = chat_model_default_ids(user=alice)
    assert ids == ([default] if default != "tiny-gemma3" else [])
    for model_id in ids:
        assert f'data-model="{model_id}"' in page
