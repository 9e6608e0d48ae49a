"""Fixtures of the hub tests: the local Hub (tests/fakes/hub_publish_server.py) that the real huggingface_hub client
and the OAuth redirects talk to, a LoRA fine-tune of the tiny model really trained once per session, and helpers."""
import shutil

import pytest

from apps.datasets.services import dataset_create, dataset_version_freeze, qa_pair_create
from apps.hub.connections import hub_connection_create_with_token
from apps.training.jobs import finetune_card_write
from apps.training.models import FineTune
from apps.training.services import finetune_output_dir
from tests.fakes.hub_publish_server import CLIENT_ID, CLIENT_SECRET, HubPublishServer

PAIRS = [(f"Where does item{i} live?", f"Item{i} lives in {city}.")
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"])]
ALICE_HF = "alice-hf"
BOB_HF = "bob-hf"


@pytest.fixture
def hub(settings):
    """The local Hub, with the accounts alice-hf and bob-hf, and this server's settings pointing at it."""
    with HubPublishServer() as server:
        server.alice_token = server.add_user(ALICE_HF)
        server.bob_token = server.add_user(BOB_HF)
        server.oauth_user = ALICE_HF
        settings.HF_ENDPOINT = server.url
        settings.HF_OAUTH_CLIENT_ID = CLIENT_ID
        settings.HF_OAUTH_CLIENT_SECRET = CLIENT_SECRET
        yield server


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """What a LoRA training of the tiny model leaves behind (base/, model/, adapter.zip): trained for real, briefly."""
    from workers.engine.reporting import RecordingReporter
    from workers.engine.train.train import TrainConfig, train

    out = tmp_path_factory.mktemp("hub-trained")
    train(TrainConfig(base_model="tiny-gemma3", output_dir=str(out), pairs=[{"question": q, "answer": a} for q, a in PAIRS],
                      max_steps=5, evaluate=False), RecordingReporter())
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return out


def make_finetune(owner, trained, *, name="Valley model", evaluation=None) -> FineTune:
    """A finished LoRA fine-tune of `owner`: the trained folder under the artifacts folder, metrics and card."""
    dataset = dataset_create(owner=owner, name="Valley notes")
    for question, answer in PAIRS:
        qa_pair_create(dataset=dataset, question=question, answer=answer)
    version = dataset_version_freeze(dataset=dataset)
    finetune = FineTune.objects.create(owner=owner, dataset=dataset, version=version, base_model="tiny-gemma3",
                                       method=FineTune.Method.LORA, name=name,
                                       config={"max_steps": 5, "learning_rate": 0.01, "lora_r": 16})
    shutil.copytree(trained, finetune_output_dir(finetune))
    finetune.metrics = {"backend": "trl", "train_steps": 5, "loss_first": 6.0, "loss_last": 4.0, "em_before": 0.0,
                        "em_after": 0.25, "examples": len(PAIRS), "code_version": "0.1.0+test"}
    if evaluation is not None:
        finetune.metrics["evaluation"] = evaluation
    finetune.artifact = f"{finetune.code}/adapter.zip"
    finetune.save()
    finetune_card_write(finetune=finetune)
    finetune.refresh_from_db()
    return finetune


@pytest.fixture
def artifacts(settings, tmp_path):
    settings.GARAGE_ARTIFACTS_DIR = tmp_path / "artifacts"
    return settings.GARAGE_ARTIFACTS_DIR


@pytest.fixture
def finetune(alice, artifacts, trained):
    return make_finetune(alice, trained)


@pytest.fixture
def alice_connected(alice, hub):
    """Alice connected with her pasted token."""
    return hub_connection_create_with_token(owner=alice, token=hub.alice_token)


@pytest.fixture
def bob_client(bob):
    from django.test import Client

    client = Client()  # not the `client` fixture: alice_client is that one, signed in as alice
    client.force_login(bob)
    return client


