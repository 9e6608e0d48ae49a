import pytest

from apps.core.models import Job, JobEvent
from apps.core.services import job_finish
from apps.datasets.services import (
    dataset_create,
    dataset_version_freeze,
    qa_pair_create,
)
from apps.providers.services import provider_credential_create
from apps.rl.services import grpo_run_create

ALICE_KEY = "sk-alice-judge-key-0123456789abcd"
REWARDS = [{"type": "format", "weight": 0.5}, {"type": "answer_match", "name": "correct", "weight": 2}]
GOOD = "<reasoning>\n3 and 4 make 7.\n</reasoning>\n<answer>\n7\n</answer>"


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def no_site_endpoint(settings):
    settings.GARAGE_LLM_BASE_URL = settings.GARAGE_LLM_MODEL = settings.GARAGE_LLM_API_KEY = ""
    return settings


def version_for(owner, n=4, name="Capitals"):
    dataset = dataset_create(owner=owner, name=name)
    for i in range(n):
        qa_pair_create(dataset=dataset, question=f"What is the capital of country {i}?", answer=f"City {i}")
    return dataset_version_freeze(dataset=dataset, heldout_ratio=0.0)


@pytest.fixture
def alice_version(alice):
    return version_for(alice)


@pytest.fixture
def alice_provider(alice, chat_server):
    """Alice's saved provider pointing at the fake chat server, which insists on her key."""
    chat_server.api_key = ALICE_KEY
    return provider_credential_create(owner=alice, name="Judge box", base_url=chat_server.url, model=chat_server.model,
                                      api_key=ALICE_KEY)


def jsonl(*rows, name="prompts.jsonl"):
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)
    return SimpleUploadedFile(name, text.encode(), content_type="application/jsonl")


def finished_run(owner, name="Alice's GRPO", **kwargs):
    """A run whose job has succeeded, with a few step metrics (one carrying samples) and results."""
    run = grpo_run_create(owner=owner, rewards=REWARDS, source="upload", name=name,
                          prompts_file=jsonl({"prompt": "3 + 4?", "answer": "7"}, {"prompt": "2 + 2?"}),
                          settings={"max_steps": 3}, **kwargs)
    for step in (1, 2, 3):
        data = {"step": step, "loss": 0.1, "reward": 0.5 * step, "reward/format": 0.2 * step, "reward/correct": 0.1 * step,
                "kl": 0.01 * step, "completion_length": 40 - step}
        if step == 3:
            data["samples"] = [{"prompt": "3 + 4?", "completion": GOOD, "answer": "7",
                                "scores": {"format": 1.0, "correct": 1.0}}]
        JobEvent.objects.create(job=run.job, type=JobEvent.Type.METRIC, data=data)
    run.metrics = {"backend": "trl", "train_steps": 3, "reward_first": 0.5, "reward_last": 1.5, "train_seconds": 2.0,
                   "rewards": {"format": {"first": 0.2, "last": 0.6, "weight": 0.5},
                               "correct": {"first": 0.1, "last": 0.3, "weight": 2.0}},
                   "judge": None, "warmup": None, "prompts_left_out": 0}
    run.save(update_fields=["metrics"])
    job_finish(job=run.job, status=Job.Status.SUCCEEDED, result={"reward_last": 1.5})
    return run


@pytest.fixture
def alice_run(alice):
    return finished_run(alice)


