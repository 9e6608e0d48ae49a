"""A tiny Gemma 3 LoRA run trained once per session, and fine-tune rows that own a copy of it."""
import shutil

import pytest

PAIRS = [(f"Where does item{i} live?", f"Item{i} lives in {city}.")
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Quito", "Dublin"])]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The folder a LoRA run of the tiny model leaves (base/, model/, adapter.zip): really trained, so that the
    tuned model answers the questions and the base model does not."""
    from workers.engine.reporting import RecordingReporter
    from workers.engine.train.train import TrainConfig, train

    out = tmp_path_factory.mktemp("trained")
    train(TrainConfig(base_model="tiny-gemma3", output_dir=str(out), pairs=[{"question": q, "answer": a} for q, a in PAIRS],
                      max_steps=30, batch_size=8, evaluate=False), RecordingReporter())
    return out


def make_finetune(owner, trained, *, name="Valley model", finished=True, base_model="tiny-gemma3"):
    """A fine-tune of `owner` whose files are a copy of `trained` under the artifacts folder (where a worker
    started by the tests looks too)."""
    from apps.datasets.services import dataset_create, dataset_version_freeze, qa_pair_create
    from apps.training.models import FineTune
    from apps.training.services import finetune_output_dir

    dataset = dataset_create(owner=owner, name=f"{name} notes")
    for question, answer in PAIRS:
        qa_pair_create(dataset=dataset, question=question, answer=answer)
    version = dataset_version_freeze(dataset=dataset)
    finetune = FineTune.objects.create(owner=owner, dataset=dataset, version=version, base_model=base_model, name=name,
                                       method=FineTune.Method.LORA, config={"max_steps": 60})
    if finished:
        shutil.copytree(trained, finetune_output_dir(finetune), ignore=shutil.ignore_patterns("checkpoints"))
        finetune.artifact = f"{finetune.code}/adapter.zip"
        finetune.metrics = {"em_before": 0.0, "em_after": 1.0}
        finetune.save()
    return finetune


@pytest.fixture
def alice_model(alice, trained):
    return make_finetune(alice, trained)


@pytest.fixture
def bob_client(bob):
    from django.test import Client

    client = Client()
    client.force_login(bob)
    return client
