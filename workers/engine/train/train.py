"""The training engine: supervised fine-tuning of a causal LM on question-answer pairs.

Two backends behind one config: Unsloth (FastLanguageModel + TRL's SFTTrainer, on CUDA) and plain TRL + PEFT
(any device). Pure engine code: a config dataclass in, a reporter for progress, a result dict out. No Django."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

from workers.common.catalogue import lora_targets, model_facts
from workers.engine.weights import model_source
from workers.common.errors import Cancelled, ReadableError
from workers.common.planner import GIB, Plan, estimate
from workers.engine.train.device import measure_device
from workers.engine.reporting import Reporter
from workers.common.sentences import split_sentences
from workers.common.training import (BACKENDS, CHECKPOINT_WHOLE, CHECKPOINTS, METHODS, REPLAY_FILE, TrainConfig,
                                     checkpoint_step)
from workers.common.paths import DATA_DIR

# The share of the progress bar the training steps fill when exact match is measured after them.
TRAINING_SHARE = 0.95


def _messages(question: str, answer: str | None = None, system: str = "") -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


PASSAGE_PROMPT = "Continue this passage from the documents:\n\n"
# General questions for replay, shipped with the project; none of them is in the control set that measures forgetting.
REPLAY_SET = DATA_DIR / "control" / "replay.jsonl"
REPLAY_MAX_NEW_TOKENS = 48


def load_replay_prompts(path: str | Path = REPLAY_SET) -> list[str]:
    return [json.loads(line)["question"] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def replay_pairs(model, tokenizer, prompts: list[str], system: str = "") -> list[dict]:
    """The base model's own greedy answers to `prompts`, as pairs to train on (answers it cut off mid-way are kept:
    they are still what it would have said). Empty answers are left out."""
    from workers.engine.inference import answer

    answers = answer(model, tokenizer, [_messages(p, system=system) for p in prompts],
                     max_new_tokens=REPLAY_MAX_NEW_TOKENS, batch_size=32)
    return [{"question": p, "answer": a.strip(), "system": system} for p, a in zip(prompts, answers) if a.strip()]


def passage_pairs(passages: list[str], *, max_chars: int) -> list[dict]:
    """Passages as continuation examples: a sentence is the prompt, what follows (up to `max_chars`) the answer, so
    that the loss falls on the document's own words. Long passages are cut into several examples at sentence ends,
    each short enough to fit the maximum sequence length, so that every sentence but the first is an answer once."""
    pairs = []
    for passage in passages:
        parts = split_sentences(passage)
        while len(parts) >= 2:
            head, body = parts[0], []
            for sentence in parts[1:]:
                if body and len(head) + sum(len(b) + 1 for b in body) + len(sentence) > max_chars:
                    break
                body.append(sentence)
            pairs.append({"question": PASSAGE_PROMPT + head, "answer": " ".join(body)})
            parts = parts[len(body):]  # the last sentence answered is the next prompt: every later one is trained on
    return pairs


def _common_system(pairs: list[dict]) -> str:
    """The system prompt the training pairs share (the fine-tune's own), so that replay is asked the same way."""
    systems = {p.get("system", "") for p in pairs}
    return systems.pop() if len(systems) == 1 else ""


def write_replay(output_dir: Path, replay: list[dict]) -> None:
    (output_dir / REPLAY_FILE).write_text(json.dumps(replay))


def read_replay(output_dir: Path) -> list[dict]:
    path = output_dir / REPLAY_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def training_passages(config: "TrainConfig") -> list[dict]:
    """The run's passage examples, each fitting the maximum length: about four characters a token, less the
    prompt's share."""
    return passage_pairs(config.passages, max_chars=max(64, config.max_length * 3))


def prompt_completion_dataset(pairs: list[dict]):
    """Pairs as TRL's conversational prompt-completion records: the trainer applies the model's own chat template,
    and with completion_only_loss the loss falls on the answer only, whatever the template looks like."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": _messages(p["question"], system=p.get("system", "")),
                               "completion": [{"role": "assistant", "content": p["answer"]}]} for p in pairs])


def em_sample(pairs: list[dict], size: int, seed: int = 0) -> list[dict]:
    """A fixed sample of `size` pairs (all of them when `size` is 0 or the pairs are fewer), in their order."""
    if size <= 0 or len(pairs) <= size:
        return pairs
    import random

    return [pairs[i] for i in sorted(random.Random(seed).sample(range(len(pairs)), size))]


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_backend(config: TrainConfig) -> str:
    """The backend that will run: Unsloth only where it can (CUDA and the package installed)."""
    unsloth_installed = importlib.util.find_spec("unsloth") is not None
    if config.backend == "unsloth":
        if not unsloth_installed:
            raise ReadableError("The Unsloth backend was chosen, but Unsloth is not installed on this worker.")
        return "unsloth"
    if config.backend == "trl":
        return "trl"
    return "unsloth" if unsloth_installed and cuda_available() else "trl"


def validate(config: TrainConfig) -> None:
    """Refuse settings that cannot work, before any model is loaded or GPU time is spent."""
    if config.method not in METHODS:
        raise ReadableError(f"Unknown training method '{config.method}'. Choose one of: {', '.join(METHODS)}.")
    if config.backend not in BACKENDS:
        raise ReadableError(f"Unknown backend '{config.backend}'. Choose one of: {', '.join(BACKENDS)}.")
    if not config.pairs:
        raise ReadableError("There are no question-answer pairs to train on.")
    if config.method in ("lora", "qlora") and config.lora_r < 1:
        raise ReadableError("The LoRA rank must be at least 1.")
    if config.learning_rate <= 0:
        raise ReadableError("The learning rate must be greater than zero.")
    if config.max_steps < 1 or config.batch_size < 1 or config.gradient_accumulation < 1:
        raise ReadableError("Steps, batch size and gradient accumulation must each be at least 1.")
    if config.epochs < 0 or config.memory_limit_gib < 0:
        raise ReadableError("The number of epochs and the memory limit cannot be negative.")
    if config.method == "qlora" and not cuda_available():
        raise ReadableError("QLoRA needs an NVIDIA GPU (4-bit weights run on CUDA only). Use LoRA on this worker.")


def planned_steps(config: TrainConfig) -> int:
    """Optimizer steps the run will take: max_steps, or enough whole batches for `epochs` passes over the data.
    Converting epochs to steps up front keeps progress, ETA, checkpoints and resume on one step count."""
    if config.epochs <= 0:
        return config.max_steps
    examples = len(config.pairs) + len(training_passages(config)) + len(config.replay_prompts)
    steps_per_epoch = math.ceil(examples / (config.batch_size * config.gradient_accumulation))
    return max(1, math.ceil(config.epochs * steps_per_epoch))


def _check_base_model(config: TrainConfig, base_path: str) -> dict:
    """Refuse a base model that cannot be reached or a sequence length over its limit; return its facts."""
    path = Path(base_path)
    if not path.is_dir() and (os.environ.get("HF_HUB_OFFLINE") == "1" or path.is_absolute() or base_path.startswith(".")):
        raise ReadableError(f"The base model '{config.base_model}' is not a local folder, and this worker is offline.")
    facts = model_facts(config.base_model, base_path)
    limit = facts["max_length"]
    if limit is not None and config.max_length > limit:
        raise ReadableError(f"The maximum sequence length {config.max_length} exceeds this model's limit of {limit} tokens.")
    return facts


def preflight(config: TrainConfig, backend: str, facts: dict) -> Plan | None:
    """Estimate peak memory and step time on this worker's device before any weights load; refuse a run that
    will not fit, naming changes that would. None when the model's architecture is unknown."""
    architecture = facts["architecture"]
    if architecture is None:
        return None
    entry = facts["entry"]
    # The published count where the catalogue knows it (it includes what the architecture leaves out, such as a
    # vision tower), else the architecture's own.
    parameters = entry.parameters if entry and entry.architecture else architecture.parameters()
    device = measure_device()
    if config.memory_limit_gib:
        device.memory_bytes = int(config.memory_limit_gib * GIB)
    plan = estimate(architecture=architecture, parameters=parameters, method=config.method, backend=backend,
                    batch_size=config.batch_size, max_length=config.max_length, lora_r=config.lora_r, device=device)
    if not plan.fits:
        raise ReadableError(f"This run will not fit: {plan.summary()} Try " + "; or ".join(plan.suggestions) + ".")
    return plan


def exact_match(model, tokenizer, pairs: list[dict], *, batch_size: int = 64, on_batch=None) -> float:
    """Share of questions whose greedy answer equals the reference (whitespace-normalised). `on_batch(done, total)`
    is told after each batch of answers."""
    from workers.engine.inference import answer

    if not pairs:
        return 0.0
    answer_tokens = max(len(tokenizer(p["answer"], add_special_tokens=False)["input_ids"]) for p in pairs)
    was_training = model.training
    model.eval()
    try:
        answers = answer(model, tokenizer, [_messages(p["question"], system=p.get("system", "")) for p in pairs],
                         max_new_tokens=answer_tokens + 2, batch_size=batch_size, on_batch=on_batch)
    finally:
        if was_training:
            model.train()
    return sum(" ".join(text.split()) == " ".join(p["answer"].split()) for text, p in zip(answers, pairs)) / len(pairs)


def _answered(reporter: Reporter, start: float):
    """on_batch for exact_match: the answers so far as progress within the evaluation's share of the bar."""
    def on_batch(done: int, total: int) -> None:
        share = 1.0 - TRAINING_SHARE if start else 0.0  # before training the bar stays at 0: only the text moves
        reporter.progress(start + share * done / total, f"Exact match: {done} of {total} questions answered")
    return on_batch


def _progress_callback(reporter: Reporter, max_steps: int, tokens_per_step: float, compiles_first_step: bool,
                       extra_metrics=None, share: float = 1.0):
    """A TrainerCallback reporting progress and step metrics; `extra_metrics(logs, state) -> dict`, when given, adds
    a trainer's own values (GRPO's rewards and KL) to each step's metric event. The steps fill `share` of the
    progress bar; what follows them (measuring the tuned model) fills the rest."""
    import torch
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        """Streams step metrics to the reporter and stops the trainer when the owner cancels.

        Speed and ETA come from a sliding window of recent steps. Unsloth compiles each decoder block during
        the first step (a minute or more on a GPU): that step is shown as its own phase and kept out of the
        window, where it would make the ETA wildly wrong."""

        WINDOW = 20

        def __init__(self):
            self.cancelled = False
            self.losses: list[float] = []
            self.tokens_seen = 0.0
            self.compiling = compiles_first_step
            self.window: list[tuple[float, float]] = []  # (time, tokens seen) at recent logged steps
            self.eval_losses: list[dict] = []

        def window_tokens_per_s(self) -> float | None:
            if len(self.window) < 2 or self.window[-1][0] <= self.window[0][0]:
                return None
            (t0, n0), (t1, n1) = self.window[0], self.window[-1]
            return round((n1 - n0) / (t1 - t0), 1)

        def on_train_begin(self, args, state, control, **kwargs):
            if self.compiling:
                reporter.phase("compiling", "The first step compiles the model's kernels; this can take a minute or two.")

        def on_save(self, args, state, control, **kwargs):
            # The trainer calls this once the checkpoint is written whole (and older ones rotated away).
            reporter.checkpoint(state.global_step, str(Path(args.output_dir) / f"checkpoint-{state.global_step}"))

        def on_step_end(self, args, state, control, **kwargs):
            if reporter.should_stop():
                self.cancelled = True
                control.should_training_stop = True

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_loss" in metrics:
                self.eval_losses.append({"step": state.global_step, "eval_loss": round(float(metrics["eval_loss"]), 4)})
                reporter.metric(step=state.global_step, eval_loss=float(metrics["eval_loss"]))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            step = state.global_step
            # TRL counts the tokens it trained on; otherwise estimate from the data.
            tokens = float(logs.get("num_tokens") or state.num_input_tokens_seen or tokens_per_step * step)
            self.tokens_seen = tokens
            self.losses.append(float(logs["loss"]))
            if self.compiling:
                self.compiling = False
                reporter.phase("training", f"{max_steps} steps")
            self.window = (self.window + [(time.monotonic(), tokens)])[-self.WINDOW:]
            tokens_per_s, eta_s = self.window_tokens_per_s(), None
            if len(self.window) >= 2:
                per_step = (self.window[-1][0] - self.window[0][0]) / (len(self.window) - 1)
                eta_s = round(per_step * (max_steps - step), 1)
            values = {"step": step, "epoch": round(float(state.epoch or 0), 4), "loss": float(logs["loss"]),
                      "learning_rate": float(logs.get("learning_rate", 0.0)),
                      "grad_norm": float(logs.get("grad_norm", 0.0) or 0.0),
                      "tokens_per_s": tokens_per_s, "eta_s": eta_s}
            if torch.cuda.is_available():
                values["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
            if extra_metrics is not None:
                values.update(extra_metrics(logs, state))
            reporter.metric(**values)
            reporter.progress(share * step / max_steps, f"Step {step} of {max_steps}")

    return ReportProgress()


def sft_arguments(config: TrainConfig, *, steps: int, evaluates: bool):
    """TRL's SFTConfig for a run: one place, so that the GPU benchmark's raw baseline trains with the very same
    settings as the engine."""
    import torch
    from trl import SFTConfig

    use_cpu = not cuda_available()
    return SFTConfig(
        output_dir=str(Path(config.output_dir) / CHECKPOINTS), max_steps=steps,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio,  # below 1: a share of the steps
        # A constant rate ignores warm-up: with a warm-up share, the rate climbs first and then stays constant.
        lr_scheduler_type="constant_with_warmup" if config.scheduler == "constant" and config.warmup_ratio else config.scheduler,
        logging_steps=1, report_to=[], max_length=config.max_length,
        completion_only_loss=config.train_on_responses_only, packing=config.packing,
        eval_strategy="steps" if evaluates and config.eval_every else "no",
        eval_steps=config.eval_every or None, per_device_eval_batch_size=config.batch_size,
        save_strategy="steps" if config.checkpoint_every else "no", save_steps=config.checkpoint_every or 500,
        save_total_limit=2, use_cpu=use_cpu, bf16=not use_cpu and torch.cuda.is_bf16_supported(),
        seed=config.seed, data_seed=config.seed, disable_tqdm=True, log_level="error", dataloader_num_workers=0,
    )


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest whole checkpoint of a run (one cut short by a dying process is passed over), or None."""
    folder = Path(output_dir) / CHECKPOINTS
    checkpoints = [p for p in folder.glob("checkpoint-*")
                   if checkpoint_step(p.name) is not None and (p / CHECKPOINT_WHOLE).is_file()]
    return max(checkpoints, key=lambda p: checkpoint_step(p.name), default=None)


def _load(config: TrainConfig, backend: str, base_path: str, targets: list[str] | str):
    """Load the model and tokenizer for the backend; LoRA adapters are attached here for Unsloth, by TRL otherwise."""
    import torch

    if backend == "unsloth":
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=base_path, max_seq_length=config.max_length, dtype=None,
            load_in_4bit=config.method == "qlora", full_finetuning=config.method == "full")
        if config.method != "full":
            model = FastLanguageModel.get_peft_model(
                model, r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                target_modules=targets,
                use_gradient_checkpointing="unsloth", random_state=config.seed, bias="none")
        return model, tokenizer, None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    kwargs = {"dtype": torch.bfloat16 if cuda_available() else torch.float32}
    if config.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
    peft_config = None
    if config.method != "full":
        from peft import LoraConfig

        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 task_type="CAUSAL_LM", target_modules=targets)
    return model, tokenizer, peft_config


def train(config: TrainConfig, reporter: Reporter) -> dict:
    """Fine-tune, measure exact match before and after, save the adapter (or model) and zip it.

    Side effects: writes `output_dir/model/`, `output_dir/<name>.zip` and, with checkpoint_every, checkpoints
    under `output_dir/checkpoints/`. Raises Cancelled or ReadableError."""
    started = time.monotonic()
    validate(config)
    backend = resolve_backend(config)
    if backend == "unsloth":
        import unsloth  # noqa: F401  (patches transformers and TRL: must come before them)

    reporter.phase("loading model", f"Loading {config.base_model} ({backend})")
    import datasets
    import torch
    from transformers import PrinterCallback
    from trl import SFTTrainer

    from workers.common.catalogue import TINY_MODEL_ID
    from workers.engine.train.tiny_model import build_tiny_gemma3

    datasets.disable_progress_bars()  # progress goes to the reporter, not to stderr
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if config.base_model == TINY_MODEL_ID:
        if not (output_dir / "base" / "config.json").exists():  # a resumed run keeps the model it started with
            corpus = [f"{p['question']} {p['answer']}" for p in config.pairs + config.eval_pairs]
            build_tiny_gemma3(output_dir / "base", corpus, seed=config.seed)
        base_path = str(output_dir / "base")
    else:
        base_path = model_source(config.base_model, cache_dir=config.model_cache_dir or None)
    facts = _check_base_model(config, base_path)
    plan = preflight(config, backend, facts)
    if plan is not None:
        reporter.log(plan.summary())
    targets = config.lora_target_modules or lora_targets(config.base_model, facts["model_type"])
    try:
        model, tokenizer, peft_config = _load(config, backend, base_path, targets)
    except (OSError, ValueError) as exc:
        raise ReadableError(f"Could not load the base model '{config.base_model}': {exc}") from exc
    if tokenizer.chat_template is None:
        raise ReadableError("The base model has no chat template; pick an instruction-tuned model or the tiny model.")
    torch.manual_seed(config.seed)

    resume_from = latest_checkpoint(output_dir) if config.resume else None
    em_pairs = em_sample(config.pairs, config.em_sample, config.seed)
    em_label = (f"{len(em_pairs)} training questions" if len(em_pairs) == len(config.pairs)
                else f"a sample of {len(em_pairs)} of the {len(config.pairs)} training questions")
    em_before = None
    if config.evaluate and resume_from is None:
        reporter.phase("evaluating base model", f"Exact match on {em_label}")
        em_before = exact_match(model, tokenizer, em_pairs, on_batch=_answered(reporter, 0.0))
        reporter.log(f"Exact match before training: {em_before:.3f} ({em_label})")
        if reporter.should_stop():
            raise Cancelled()

    passages = training_passages(config)
    replay = []
    if config.replay_prompts and resume_from is None:
        reporter.phase("preparing data", f"The base model answers {len(config.replay_prompts)} general questions, "
                                         "replayed during training so that it keeps what it knew")
        replay = replay_pairs(model, tokenizer, config.replay_prompts, system=_common_system(config.pairs))
        write_replay(output_dir, replay)
    elif config.replay_prompts:
        replay = read_replay(output_dir)  # a resumed run trains on the very answers it started with
    reporter.phase("preparing data", f"{len(config.pairs)} examples" +
                   (f", {len(passages)} passages of the documents" if passages else "") +
                   (f", {len(replay)} replayed answers" if replay else "") +
                   (f", {len(config.eval_pairs)} held out" if config.eval_pairs else ""))
    dataset = prompt_completion_dataset(config.pairs + passages + replay)
    eval_dataset = prompt_completion_dataset(config.eval_pairs) if config.eval_pairs else None
    mean_tokens = sum(len(tokenizer(p["question"] + " " + p["answer"])["input_ids"]) + 8 for p in config.pairs) / len(config.pairs)
    # Tokens per sequence, for speed figures when the trainer does not count them (Unsloth): packing fills each
    # sequence up to the maximum length, else a sequence is one example.
    sequence_tokens = config.max_length if config.packing else min(mean_tokens, config.max_length)
    steps_planned = planned_steps(config)
    args = sft_arguments(config, steps=steps_planned, evaluates=eval_dataset is not None)
    callback = _progress_callback(reporter, steps_planned, sequence_tokens * config.batch_size * config.gradient_accumulation,
                                  compiles_first_step=backend == "unsloth" and resume_from is None,
                                  share=TRAINING_SHARE if config.evaluate else 1.0)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, eval_dataset=eval_dataset,
                         peft_config=peft_config, args=args, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # progress goes to the reporter, not to stdout
    if resume_from is not None:
        reporter.log(f"Resuming from {resume_from.name}")
    if not callback.compiling:  # otherwise the callback shows "compiling", then "training" after the first step
        reporter.phase("training", f"{steps_planned} steps, {config.method}, {backend}")
    train_started = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.monotonic() - train_started
    if callback.cancelled:
        raise Cancelled()  # the checkpoints written so far stay, so the job can be resumed
    steps = trainer.state.global_step
    tokens = callback.tokens_seen or sequence_tokens * config.batch_size * config.gradient_accumulation * steps
    if eval_dataset is not None and not (callback.eval_losses and callback.eval_losses[-1]["step"] == steps):
        reporter.phase("evaluating tuned model", f"Loss on {len(config.eval_pairs)} held-out examples")
        trainer.evaluate()  # the callback records it
    eval_loss = callback.eval_losses[-1]["eval_loss"] if callback.eval_losses else None

    em_after = None
    if config.evaluate:
        reporter.phase("evaluating tuned model", f"Exact match on {em_label}")
        em_after = exact_match(trainer.model, tokenizer, em_pairs, on_batch=_answered(reporter, TRAINING_SHARE))
        reporter.log(f"Exact match after training: {em_after:.3f} ({em_label})")

    reporter.phase("saving", "Writing the model" if config.method == "full" else "Writing the adapter")
    model_dir = output_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    trainer.model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    archive = output_dir / ("model.zip" if config.method == "full" else "adapter.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(model_dir))
    reporter.progress(1.0, "Done")
    return {
        "backend": backend,
        "train_steps": steps,
        "loss_first": callback.losses[0] if callback.losses else None,
        "loss_last": callback.losses[-1] if callback.losses else None,
        "em_before": em_before,
        "em_after": em_after,
        "eval_loss": eval_loss,
        "eval_losses": callback.eval_losses,
        "lora_target_modules": targets if config.method != "full" else None,
        "tokens_per_s": round(tokens / train_seconds, 1) if train_seconds > 0 else None,
        # Over the last steps only: without the first step's compile, the speed a longer run would see.
        "steady_tokens_per_s": callback.window_tokens_per_s(),
        "train_seconds": round(train_seconds, 2),
        "seconds": round(time.monotonic() - started, 2),
        "artifact": str(archive),
        "examples": len(config.pairs),
        "passages": len(passages),
        "replayed": len(replay),
        "resumed_from_step": checkpoint_step(resume_from.name) if resume_from else None,
        "plan": plan.as_dict() if plan else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / GIB, 3) if torch.cuda.is_available() else None,
        "config": {k: v for k, v in asdict(config).items() if k not in ("pairs", "eval_pairs")},
    }
