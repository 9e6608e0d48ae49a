"""The playground's saved-prompt picker in headless Chromium: choosing a prompt puts its text into the system box."""
import pytest

from apps.prompts.services import saved_prompt_create
from tests.browser import BROWSER_TEST

pytestmark = BROWSER_TEST


@pytest.fixture
def trained(tmp_path):
    """The page never loads the model: an empty folder stands in for the trained one."""
    folder = tmp_path / "trained"
    folder.mkdir()
    return folder


def test_it_fills_the_system_prompt_box_with_the_chosen_saved_prompt(alice, alice_model, server, browser_context,
                                                                      session_cookie):
    first = saved_prompt_create(owner=alice, name="Terse", text="Answer in three words.")
    second = saved_prompt_create(owner=alice, name="Cities", text="Always name the city first.\nThen explain.")
    browser_context.add_cookies([{"name": "sessionid", "value": session_cookie(alice), "url": server}])
    page = browser_context.new_page()
    page.goto(f"{server}/playground/?prompt={first.code}")
    assert page.input_value("[data-role=system]") == "Answer in three words."
    page.select_option("[data-role=saved-prompt]", str(second.code))
    assert page.input_value("[data-role=system]") == "Always name the city first.\nThen explain."
    page.fill("[data-role=system]", "Edited by hand.")
    page.select_option("[data-role=saved-prompt]", "")  # "choose…" leaves the box as it is
    assert page.input_value("[data-role=system]") == "Edited by hand."
