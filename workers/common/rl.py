"""What a GRPO run takes, shared by the web and the worker: the run's config dataclass and its limits, and the
reference recipe (rewards, as specs of workers.common.rewards, and settings).

workers.engine.rl.grpo trains with GRPOTrainConfig. The web process reads the limits and the defaults from here to
build its forms and refuse a request before any job exists. Light: no Django, no torch, no engine."""
from __future__ import annotations

from dataclasses import dataclass, field


# ---------------------------------------------------------------------------------------------------------------
# GRPO runs
# ---------------------------------------------------------------------------------------------------------------

# The format the reference recipe asks for; the warm-up examples are written in it.
TAGS_SYSTEM_PROMPT = ("Respond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>")
TAGS_TEMPLATE = "<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>"

RECIPE_REWARDS = [
    {"type": "format", "name": "format", "weight": 0.5, "mode": "tags", "tags": ["reasoning", "answer"]},
    {"type": "answer_match", "name": "correctness", "weight": 2.0},
]
# The reference recipe (Gemma 3 1B Instruct on GSM8K), sized for one H100: LoRA, 8 completions for each of 8 prompts
# per step, after a short SFT warm-up on the answer format.
RECIPE_SETTINGS = {"system_prompt": TAGS_SYSTEM_PROMPT, "warmup_template": TAGS_TEMPLATE, "num_generations": 8,
                   "prompts_per_step": 8, "max_prompt_length": 256, "max_completion_length": 256,
                   "learning_rate": 2e-5, "beta": 0.04, "temperature": 1.0, "max_steps": 250, "lora_r": 16,
                   "lora_alpha": 32, "warmup_steps": 20, "warmup_learning_rate": 1e-4, "warmup_examples": 256,
                   "benchmark_limit": 200, "benchmark_max_new_tokens": 512}


@dataclass
class GRPOTrainConfig:
    base_model: str  # a catalogue id (workers.common.catalogue), a Hub id or a local folder
    output_dir: str
    # A LoRA adapter folder folded into the base model before anything else (training on from a tuned model); empty:
    # the base model as it is.
    base_adapter: str = ""
    prompts: list[dict] = field(default_factory=list)  # [{"prompt", "answer"?, "solution"?, "system"?}]
    rewards: list[dict] = field(default_factory=list)  # reward specs (validate_specs below)
    system_prompt: str = ""  # for prompts without their own
    num_generations: int = 4  # completions sampled per prompt (a GRPO group)
    prompts_per_step: int = 2  # prompts per optimizer step; the batch is prompts_per_step × num_generations
    max_prompt_length: int = 256  # tokens; longer prompts are left out (cutting a question changes it)
    max_completion_length: int = 128  # tokens
    learning_rate: float = 5e-6
    beta: float = 0.04  # the KL penalty towards the starting model; 0 switches it (and the KL metric) off
    temperature: float = 1.0
    top_p: float = 1.0
    max_steps: int = 100
    method: str = "lora"
    backend: str = "auto"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str | None = None
    # Supervised warm-up: `warmup_steps` steps on worked examples made from prompts with answers, written with
    # `warmup_template` ({answer}: the reference; {reasoning}: the solution without its final answer line).
    warmup_steps: int = 0
    warmup_learning_rate: float = 2e-4
    warmup_examples: int = 256
    warmup_template: str = TAGS_TEMPLATE
    checkpoint_every: int = 0
    resume: bool = False
    seed: int = 0
    sample_every: int = 5  # steps between the rolling samples of completions shown live
    save_merged: bool = False  # also write the tuned model merged into one folder (benchmarks load it)
    model_cache_dir: str = ""


GRPO_LIMITS = {"num_generations": (2, 64), "prompts_per_step": (1, 256), "max_prompt_length": (8, 32_768),
               "max_completion_length": (1, 32_768), "learning_rate": (1e-8, 1.0), "beta": (0.0, 10.0),
               "temperature": (0.01, 5.0), "top_p": (0.01, 1.0), "max_steps": (1, 100_000), "lora_r": (1, 512),
               "lora_alpha": (1, 1024), "lora_dropout": (0.0, 0.9), "warmup_steps": (0, 10_000),
               "warmup_learning_rate": (1e-8, 1.0), "warmup_examples": (1, 100_000), "checkpoint_every": (0, 100_000),
               "seed": (0, 2**31 - 1), "sample_every": (1, 10_000)}
