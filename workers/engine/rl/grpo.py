"""The GRPO engine: reinforcement learning of a causal LM from prompts and composable reward functions.

TRL's GRPOTrainer samples several completions per prompt, scores them with the reward functions of
workers.common.rewards and pushes the model towards the better ones of each group. On CUDA with Unsloth installed the
model is loaded through Unsloth (the same loading as workers.engine.train.train); elsewhere plain TRL + PEFT runs, on any device.

A model that gives the same answer to every sample of a group learns nothing from GRPO (all advantages are 0), so
an optional short supervised warm-up first teaches the model the answer format on worked examples, reusing the
training engine (workers.engine.train.train.train). Pure engine code: a config dataclass (workers.common.rl, with the
limits and the reference recipe) in, a reporter for progress, a result dict out. No Django."""
from __future__ import annotations

import re
import shutil
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

from workers.engine.train import train as sft
from workers.common.errors import Cancelled, ReadableError
from workers.common.rl import GRPO_LIMITS, TAGS_TEMPLATE, GRPOTrainConfig
from workers.common.training import CHECKPOINTS, METHODS, checkpoint_step
from workers.engine.reporting import Reporter
from workers.engine.weights import fold_adapter
from workers.common.rewards import (
    SampleRecorder,
    build_scorers,
    judge_stats,
    trl_reward_functions,
)


def validate(config: GRPOTrainConfig) -> None:
    """Refuse settings that cannot work, before any model is loaded or GPU time is spent."""
    if config.method not in METHODS:
        raise ReadableError(f"Unknown training method '{config.method}'. Choose one of: {', '.join(METHODS)}.")
    if config.backend not in sft.BACKENDS:
        raise ReadableError(f"Unknown backend '{config.backend}'. Choose one of: {', '.join(sft.BACKENDS)}.")
    for name, (low, high) in GRPO_LIMITS.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ReadableError(f"{name.replace('_', ' ').capitalize()} must be between {low} and {high}.")
    if not config.prompts:
        raise ReadableError("There are no prompts to train on.")
    for index, row in enumerate(config.prompts[:100_000]):
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ReadableError(f"Prompt {index + 1} has no text.")
    build_scorers(config.rewards, judge_client=lambda provider: None)  # checks the specs only
    if config.warmup_steps and "{answer}" not in config.warmup_template:
        raise ReadableError("The warm-up template must contain {answer}, where each reference answer goes.")
    if config.method == "qlora" and not sft.cuda_available():
        raise ReadableError("QLoRA needs an NVIDIA GPU (4-bit weights run on CUDA only). Use LoRA on this worker.")


def _messages(row: dict, system_prompt: str) -> list[dict]:
    system = row.get("system") or system_prompt
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": row["prompt"]}]


def _reasoning(solution: str) -> str:
    """A worked solution without its final answer line and calculator annotations (GSM8K's <<2*3=6>>)."""
    text = re.sub(r"<<[^<>]*>>", "", solution or "")
    if "####" in text:
        text = text.rsplit("####", 1)[0]
    return text.strip()


def warmup_pairs(config: GRPOTrainConfig) -> list[dict]:
    """Worked examples for the warm-up: prompts with a reference answer, the answer written with the template."""
    pairs = []
    for row in config.prompts:
        answer = str(row.get("answer") or "").strip()
        if not answer:
            continue
        reasoning = _reasoning(str(row.get("solution") or "")) or "The answer follows."
        text = config.warmup_template.replace("{reasoning}", reasoning).replace("{answer}", answer)
        pairs.append({"question": row["prompt"], "answer": text, "system": row.get("system") or config.system_prompt})
        if len(pairs) >= config.warmup_examples:
            break
    return pairs


class StageReporter:
    """Passes a stage's reports on: progress mapped into [start, end] of the whole job, phases and log lines
    prefixed, metric names prefixed (so the warm-up's loss does not mix with GRPO's on the charts)."""

    def __init__(self, reporter: Reporter, *, start: float, end: float, prefix: str = "", metric_prefix: str = ""):
        self.reporter, self.start, self.end = reporter, start, end
        self.prefix, self.metric_prefix = prefix, metric_prefix

    def phase(self, name, message=""):
        self.reporter.phase(f"{self.prefix}{name}"[:40], message)

    def progress(self, fraction, message=""):
        self.reporter.progress(self.start + (self.end - self.start) * fraction,
                               f"{self.prefix.capitalize()}{message}" if self.prefix else message)

    def log(self, line):
        self.reporter.log(f"{self.prefix.capitalize()}{line}" if self.prefix else line)

    def metric(self, **values):
        self.reporter.metric(**{f"{self.metric_prefix}{k}": v for k, v in values.items()})

    def checkpoint(self, step, folder):
        if not self.metric_prefix:
            self.reporter.checkpoint(step, folder)

    def should_stop(self):
        return self.reporter.should_stop()


def _model_config(config: GRPOTrainConfig) -> sft.TrainConfig:
    """The training engine's config for loading: method, LoRA settings, sequence length and seed."""
    return sft.TrainConfig(base_model=config.base_model, output_dir=config.output_dir, method=config.method,
                           backend=config.backend, lora_r=config.lora_r, lora_alpha=config.lora_alpha,
                           lora_dropout=config.lora_dropout, lora_target_modules=config.lora_target_modules,
                           max_length=config.max_prompt_length + config.max_completion_length, seed=config.seed,
                           model_cache_dir=config.model_cache_dir)


def _base_path(config: GRPOTrainConfig, output_dir: Path) -> str:
    """The folder (or Hub id) GRPO starts from: the base model resolved by the catalogue, with `base_adapter` merged
    into output_dir/base once; or the tiny test model built there from the prompts."""
    from workers.engine.weights import model_source
    from workers.common.catalogue import TINY_MODEL_ID
    from workers.engine.train.tiny_model import build_tiny_gemma3

    folder = output_dir / "base"
    if config.base_adapter:
        if not Path(config.base_adapter).is_dir():
            raise ReadableError("The tuned model's files are missing; it may not have finished training.")
        if not (folder / "config.json").exists():  # a resumed run keeps the model it started with
            fold_adapter(model_source(config.base_model, cache_dir=config.model_cache_dir or None),
                          Path(config.base_adapter), folder)
        return str(folder)
    if config.base_model != TINY_MODEL_ID:
        return model_source(config.base_model, cache_dir=config.model_cache_dir or None)
    if not (folder / "config.json").exists():  # a resumed run keeps the model it started with
        corpus = [str(row.get(k) or "") for row in config.prompts for k in ("prompt", "answer", "solution", "system")]
        corpus += [config.system_prompt, config.warmup_template, TAGS_TEMPLATE]
        corpus += [p["answer"] for p in warmup_pairs(config)]
        build_tiny_gemma3(folder, [text for text in corpus if text], seed=config.seed)
    return str(folder)


def _warm_up(config: GRPOTrainConfig, reporter: Reporter, base_path: str, output_dir: Path, end: float) -> tuple[str, dict]:
    """Supervised warm-up on worked examples; returns the folder GRPO starts from and a summary. A finished
    warm-up (its merged folder exists) is not repeated when the job runs again."""
    folder = output_dir / "warmup"
    start_dir = folder / ("model" if config.method == "full" else "merged")
    if (start_dir / "config.json").exists():
        reporter.log("Warm-up already done; starting GRPO from its model")
        return str(start_dir), {"skipped": True}
    pairs = warmup_pairs(config)
    if not pairs:
        raise ReadableError("The warm-up needs prompts with reference answers; none of the prompts has one. "
                            "Set the warm-up steps to 0 or add answers.")
    stage = StageReporter(reporter, start=0.0, end=end, prefix="warm-up: ", metric_prefix="warmup_")
    method = "lora" if config.method == "qlora" else config.method  # the warm-up's adapter is merged afterwards
    result = sft.train(sft.TrainConfig(
        base_model=base_path, output_dir=str(folder), pairs=pairs, method=method, backend=config.backend,
        max_steps=config.warmup_steps, learning_rate=config.warmup_learning_rate, batch_size=min(16, len(pairs)),
        max_length=config.max_prompt_length + config.max_completion_length, lora_r=config.lora_r,
        lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, lora_target_modules=config.lora_target_modules,
        evaluate=False, seed=config.seed, model_cache_dir=config.model_cache_dir), stage)
    if method != "full":
        reporter.phase("warm-up: merging", "Folding the warm-up adapter into the model")
        fold_adapter(base_path, folder / "model", start_dir)
    return str(start_dir), {"steps": result["train_steps"], "examples": len(pairs), "loss_first": result["loss_first"],
                            "loss_last": result["loss_last"], "seconds": result["train_seconds"]}


def _dataset(config: GRPOTrainConfig, tokenizer, reporter: Reporter):
    """The prompts as a TRL conversational dataset with their columns (answer, ...); prompts over
    max_prompt_length tokens are left out and counted."""
    from datasets import Dataset

    rows, dropped = [], 0
    for row in config.prompts:
        messages = _messages(row, config.system_prompt)
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) > config.max_prompt_length:
            dropped += 1
            continue
        rows.append({"prompt": messages, "answer": str(row.get("answer") or "")})
    if dropped:
        reporter.log(f"Left out {dropped} prompts longer than {config.max_prompt_length} tokens")
    if not rows:
        raise ReadableError(f"Every prompt is longer than the maximum prompt length ({config.max_prompt_length} "
                            "tokens); raise it.")
    return Dataset.from_list(rows), dropped


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


def grpo_train(config: GRPOTrainConfig, reporter: Reporter, *, judge_client=None, on_judge_call=None) -> dict:
    """Optionally warm up, then run GRPO; save the adapter (or model), zip it, and with save_merged the merged model.

    `judge_client(provider)` gives the workers.common.llm.ChatClient for LLM-judge rewards; `on_judge_call(result, spec)`
    is called per judge request (an audit log). Side effects: writes under `output_dir` (base/ for the tiny model,
    warmup/, checkpoints/, model/, adapter.zip or model.zip, merged/). Raises Cancelled or ReadableError."""
    started = time.monotonic()
    validate(config)
    scorers = build_scorers(config.rewards, judge_client=judge_client, on_call=on_judge_call)
    backend = sft.resolve_backend(config)
    if backend == "unsloth":
        import unsloth  # noqa: F401  (patches transformers and TRL: must come before them)

    reporter.phase("loading model", f"Loading {config.base_model} ({backend})")
    import datasets
    import torch
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    datasets.disable_progress_bars()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    base_path = _base_path(config, output_dir)
    model_config = _model_config(config)
    facts = sft._check_base_model(model_config, base_path)
    resume_from = sft.latest_checkpoint(output_dir) if config.resume else None

    warmup = None
    policy_path = base_path
    grpo_start = 0.0
    if config.warmup_steps:
        grpo_start = 0.2
        policy_path, warmup = _warm_up(config, reporter, base_path, output_dir, grpo_start)
        if reporter.should_stop():
            raise Cancelled()
    targets = config.lora_target_modules or sft.lora_targets(config.base_model, facts["model_type"])
    reporter.phase("loading model", "Loading the model GRPO starts from")
    try:
        model, tokenizer, peft_config = sft._load(model_config, backend, policy_path, targets)
    except (OSError, ValueError) as exc:
        raise ReadableError(f"Could not load the base model '{config.base_model}': {exc}") from exc
    if tokenizer.chat_template is None:
        raise ReadableError("The base model has no chat template; pick an instruction-tuned model or the tiny model.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation pads prompts on the left
    torch.manual_seed(config.seed)

    reporter.phase("preparing data", f"{len(config.prompts)} prompts")
    dataset, dropped = _dataset(config, tokenizer, reporter)
    recorder = SampleRecorder()
    reward_funcs, weights = trl_reward_functions(scorers, recorder)
    stats = judge_stats(scorers)
    use_cpu = not sft.cuda_available()
    args = GRPOConfig(
        output_dir=str(output_dir / CHECKPOINTS), max_steps=config.max_steps,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        num_generations=config.num_generations, learning_rate=config.learning_rate, lr_scheduler_type="constant",
        beta=config.beta, temperature=config.temperature, top_p=config.top_p,
        max_completion_length=config.max_completion_length, reward_weights=weights, logging_steps=1, report_to=[],
        save_strategy="steps" if config.checkpoint_every else "no", save_steps=config.checkpoint_every or 500,
        save_total_limit=2, use_cpu=use_cpu, bf16=not use_cpu and torch.cuda.is_bf16_supported(), fp16=False,
        seed=config.seed, data_seed=config.seed, disable_tqdm=True, log_level="error", dataloader_num_workers=0,
        remove_unused_columns=False, log_completions=False,
    )

    history: list[dict] = []
    judged = {"failures": 0}

    def grpo_metrics(logs: dict, state) -> dict:
        values = {"reward": logs.get("reward"), "reward_std": logs.get("reward_std"), "kl": logs.get("kl"),
                  "completion_length": logs.get("completions/mean_length"),
                  "clipped_ratio": logs.get("completions/clipped_ratio")}
        for scorer in scorers:
            values[f"reward/{scorer.name}"] = logs.get(f"rewards/{scorer.name}/mean")
            values[f"reward_std/{scorer.name}"] = logs.get(f"rewards/{scorer.name}/std")
        if stats is not None:
            values.update(stats.as_dict())
            if stats.failures > judged["failures"]:
                # Failed judgements do not stop training; the log says how many and why, so a broken endpoint or a
                # rubric the judge cannot answer to shows on the job page.
                errors = [error for scorer in scorers for error in getattr(scorer, "last_errors", [])]
                reporter.log(f"Judge: {stats.failures - judged['failures']} judgements failed by step {state.global_step}"
                             + (f"; the last: {errors[-1][:200]}" if errors else ""))
                judged["failures"] = stats.failures
        values = {k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in values.items() if v is not None}
        history.append({"step": state.global_step, **values})
        # The first step's samples, every `sample_every` steps, and the last step's: a finished run shows what it
        # ended with.
        if state.global_step in (1, config.max_steps) or state.global_step % config.sample_every == 0:
            values["samples"] = recorder.latest()
        return values

    callback = sft._progress_callback(
        StageReporter(reporter, start=grpo_start, end=1.0), config.max_steps,
        config.prompts_per_step * config.num_generations * (config.max_completion_length + 32),
        compiles_first_step=backend == "unsloth" and resume_from is None, extra_metrics=grpo_metrics)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)
    if resume_from is not None:
        reporter.log(f"Resuming from {resume_from.name}")
    if not callback.compiling:
        reporter.phase("training", f"{config.max_steps} GRPO steps, {config.num_generations} completions per prompt, "
                                   f"{config.method}, {backend}")
    train_started = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.monotonic() - train_started
    if callback.cancelled:
        raise Cancelled()  # the checkpoints written so far stay, so the job can be resumed

    reporter.phase("saving", "Writing the model" if config.method == "full" else "Writing the adapter")
    model_dir = output_dir / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    trainer.model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    archive = output_dir / ("model.zip" if config.method == "full" else "adapter.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(model_dir))
    merged = None
    if config.save_merged:
        if config.method == "full":
            merged = model_dir
        elif config.method == "lora":
            reporter.phase("saving", "Writing the merged model")
            del trainer, model
            merged = fold_adapter(policy_path, model_dir, output_dir / "merged")
        else:
            reporter.log("A QLoRA adapter is not merged (its base is 4-bit); benchmarks load base and adapter.")
    reporter.progress(1.0, "Done")

    rewards = [h.get("reward") for h in history]
    quarter = max(1, len(rewards) // 4)
    per_function = {}
    for scorer in scorers:
        series = [h.get(f"reward/{scorer.name}") for h in history]
        per_function[scorer.name] = {"first": _mean(series[:quarter]), "last": _mean(series[-quarter:]),
                                     "weight": scorer.weight}
    return {
        "backend": backend,
        "train_steps": len(history),
        "reward_first": _mean(rewards[:quarter]),  # the mean reward over the first quarter of the steps
        "reward_last": _mean(rewards[-quarter:]),  # and over the last quarter
        "rewards": per_function,
        "kl_last": _mean([h.get("kl") for h in history][-quarter:]),
        "completion_length_first": _mean([h.get("completion_length") for h in history][:quarter]),
        "completion_length_last": _mean([h.get("completion_length") for h in history][-quarter:]),
        "judge": stats.as_dict() if stats is not None else None,
        "samples": recorder.latest(),
        "warmup": warmup,
        "prompts": len(dataset),
        "prompts_left_out": dropped,
        "lora_target_modules": targets if config.method != "full" else None,
        "train_seconds": round(train_seconds, 2),
        "seconds": round(time.monotonic() - started, 2),
        "artifact": str(archive),
        "model_dir": str(model_dir),
        "policy_base": policy_path,  # the adapter applies on top of this folder (the warm-up model, or the base)
        "merged": str(merged) if merged else None,
        "resumed_from_step": checkpoint_step(resume_from.name) if resume_from else None,
        "config": {k: v for k, v in asdict(config).items() if k != "prompts"},
    }
