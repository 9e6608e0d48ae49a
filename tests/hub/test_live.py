"""A push run by the real Celery worker process: the token reaches it only as the connection's id, is decrypted
there, and the files land on the local Hub that this test started."""
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from apps.core.models import Job
from apps.training.services import finetune_output_dir
from tests.hub.conftest import ALICE_HF, make_finetune
from tests.live import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def live_finetune(alice, trained):
    """Alice's trained fine-tune in the artifacts folder the worker process uses (the default one, not a tmp dir)."""
    finetune = make_finetune(alice, trained, name="Live valley model")
    yield finetune
    shutil.rmtree(finetune_output_dir(finetune), ignore_errors=True)


def test_it_pushes_on_the_live_worker(alice_api, worker, hub, live_finetune):
    connected = alice_api.post("/api/v1/hub/connection/token/", {"token": hub.alice_token}, format="json")
    assert connected.status_code == 201
    response = alice_api.post("/api/v1/hub/pushes/", {"finetune": str(live_finetune.code), "repo": "live-model",
                                                      "private": False}, format="json")
    assert response.status_code == 202, response.content
    job = wait_for(lambda: (j := Job.objects.get(code=response.json()["code"])).is_final and j, 120, interval=0.1,
                   what="the push job")
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    repo = hub.repos[f"{ALICE_HF}/live-model"]
    assert repo["private"] is False and "# Live valley model" in repo["files"]["README.md"].decode()
    assert b'"peft_type": "LORA"' in repo["files"]["adapter_config.json"]
    listed = alice_api.get(f"/api/v1/hub/pushes/{job.code}/").json()
    assert listed["status"] == "succeeded" and listed["result"]["url"] == f"{hub.url}/{ALICE_HF}/live-model"
    assert hub.alice_token not in str(job.config) + str(list(job.events.values_list("data", flat=True)))
    assert hub.alice_token not in (Path(settings.VAR_DIR) / "worker-session.log").read_text()
