"""Where a saved prompt can be used: its pages link to the playground, a benchmark run and training; the helper other
apps share picks the owner's prompt or answers 404."""
import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.prompts.selectors import saved_prompt_apply, saved_prompt_choices
from apps.prompts.services import saved_prompt_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def prompts(alice, bob):
    return (saved_prompt_create(owner=alice, name="Short answers", text="Answer in five words."),
            saved_prompt_create(owner=bob, name="Bob's", text="Bob's secret prompt."))


def test_it_links_a_saved_prompt_to_where_it_can_be_used(alice_client, prompts):
    alice_prompt, _ = prompts
    page = alice_client.get(f"/prompts/saved/{alice_prompt.code}/").content.decode()
    assert f'href="/playground/?prompt={alice_prompt.code}"' in page
    assert f'href="/benchmarks/new/?prompt={alice_prompt.code}"' in page
    assert 'data-role="use-training" href="/datasets/"' in page and "held-out evaluation" in page
    listing = alice_client.get("/prompts/saved/").content.decode()
    assert 'href="/playground/"' in listing and 'href="/benchmarks/new/"' in listing and 'href="/datasets/"' in listing


def test_it_answers_404_to_a_stranger_on_a_saved_prompts_page(bob_client, prompts):
    alice_prompt, _ = prompts
    response = bob_client.get(f"/prompts/saved/{alice_prompt.code}/")
    assert response.status_code == 404 and "Answer in five words." not in response.content.decode()


def test_it_picks_the_owners_saved_prompt_or_the_typed_one(alice, bob, prompts):
    alice_prompt, bob_prompt = prompts
    assert saved_prompt_choices(user=alice) == [(str(alice_prompt.code), "Short answers")]
    assert saved_prompt_apply(user=alice, code="", system_prompt="Typed.") == "Typed."
    assert saved_prompt_apply(user=alice, code=alice_prompt.code) == "Answer in five words."
    assert saved_prompt_apply(user=alice, code=str(alice_prompt.code), system_prompt=" Answer in five words. ")
    for code in [bob_prompt.code, "nonsense"]:
        with pytest.raises(Http404):
            saved_prompt_apply(user=alice, code=code)
    with pytest.raises(ValidationError, match="not both"):
        saved_prompt_apply(user=alice, code=alice_prompt.code, system_prompt="Something else.")
