"""The playground's saved-prompt picker: only the owner's prompts, `?prompt=` preselects one, a stranger's is 404."""
import pytest

from apps.prompts.services import saved_prompt_create
from tests.playground.conftest import make_finetune

pytestmark = pytest.mark.django_db

ALICE_TEXT = "Answer in one short sentence about the valley."
BOB_TEXT = "Bob's secret house style: always rhyme."


@pytest.fixture
def trained(tmp_path):
    """Pages never load the model: an empty folder stands in for the trained one."""
    folder = tmp_path / "trained"
    folder.mkdir()
    return folder


@pytest.fixture
def prompts(alice, bob):
    return (saved_prompt_create(owner=alice, name="Valley style", text=ALICE_TEXT),
            saved_prompt_create(owner=bob, name="Bob rhymes", text=BOB_TEXT))


def test_it_offers_only_the_owners_saved_prompts(alice_client, alice_model, prompts):
    alice_prompt, bob_prompt = prompts
    page = alice_client.get("/playground/").content.decode()
    assert 'data-role="saved-prompt"' in page and f'value="{alice_prompt.code}"' in page and "Valley style" in page
    assert ALICE_TEXT in page  # in the page's data, for the few lines of JS that fill the box
    assert str(bob_prompt.code) not in page and "Bob rhymes" not in page and BOB_TEXT not in page
    assert '<textarea name="system" rows="2" data-role="system" placeholder="You are a helpful assistant."></textarea>' in page


def test_it_preselects_a_saved_prompt_from_the_address(alice_client, alice_model, prompts):
    alice_prompt, _ = prompts
    page = alice_client.get(f"/playground/?prompt={alice_prompt.code}").content.decode()
    assert f'<option value="{alice_prompt.code}" selected>' in page
    assert f'placeholder="You are a helpful assistant.">{ALICE_TEXT}</textarea>' in page
    assert f'<input type="hidden" name="prompt" value="{alice_prompt.code}">' in page  # kept when models change


def test_it_answers_404_for_someone_elses_saved_prompt(alice_client, bob_client, alice_model, prompts, bob, trained):
    alice_prompt, bob_prompt = prompts
    response = alice_client.get(f"/playground/?prompt={bob_prompt.code}")
    assert response.status_code == 404 and BOB_TEXT not in response.content.decode()
    assert alice_client.get("/playground/?prompt=not-a-code").status_code == 404
    make_finetune(bob, trained, name="Bob model")
    response = bob_client.get(f"/playground/?prompt={alice_prompt.code}")
    assert response.status_code == 404 and ALICE_TEXT not in response.content.decode()


def test_it_says_when_nothing_is_saved_yet(alice_client, alice_model):
    page = alice_client.get("/playground/").content.decode()
    assert "none saved yet" in page and 'data-role="saved-prompt" disabled' in page
