import pytest

from apps.datasets.services import (
    dataset_create,
    dataset_version_freeze,
    qa_pair_create,
)
from apps.providers.services import provider_credential_create
from tests.fakes.chat_server import PromptTaskResponder

ALICE_KEY = "sk-alice-prompt-key-0123456789ab"
CAPITALS = {f"What is the capital of country {i}?": f"City{i}" for i in range(10)}


def version_for(owner, name="Capitals"):
    dataset = dataset_create(owner=owner, name=name)
    for question, answer in CAPITALS.items():
        qa_pair_create(dataset=dataset, question=question, answer=answer)
    return dataset_version_freeze(dataset=dataset, heldout_ratio=0.0)


@pytest.fixture
def alice_version(alice):
    return version_for(alice)


@pytest.fixture
def alice_provider(alice, chat_server):
    """Alice's provider on the fake server, which plays task and reflection model and insists on her key."""
    chat_server.api_key = ALICE_KEY
    chat_server.responder = PromptTaskResponder(CAPITALS)
    return provider_credential_create(owner=alice, name="Lab box", base_url=chat_server.url, model=chat_server.model,
                                      api_key=ALICE_KEY)


@pytest.fixture
def bob_client(bob):
    """Bob's own browser (alice_client uses the `client` fixture, so both can be used in one test)."""
    from django.test import Client

    client = Client()
    client.force_login(bob)
    return client


def make_run(owner, version, provider, **overrides):
    from apps.prompts.services import optimized_prompt_create

    values = {"task_model": str(provider.code), "reflection_model": str(provider.code), "metric": "exact_match",
              "budget": 30, "seed_prompt": "You are helpful.", "settings": {"minibatch_size": 2}}
    return optimized_prompt_create(owner=owner, version=version, **{**values, **overrides})
