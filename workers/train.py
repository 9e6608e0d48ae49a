"""The training engine: supervised fine-tuning of a causal LM on question-answer pairs with TRL.

Pure engine code: a config dataclass in, a reporter for progress, a result dict out. No Django."""
from __future__ import annotations

import os
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers.errors import Cancelled, ReadableError
from workers.reporting import Reporter


@dataclass
class TrainConfig:
    base_model: str  # a local folder, a Hub id, or workers.tiny_model.TINY_MODEL_ID
    output_dir: str
    pairs: list[dict] = field(default_factory=list)  # [{"question": ..., "answer": ...}]
    method: str = "lora"  # "lora" or "full"
    max_steps: int = 120
    learning_rate: float = 1e-2
    batch_size: int = 16
    max_length: int = 96
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    seed: int = 0
    evaluate: bool = True


def _messages(question: str, answer: str | None = None) -> list[dict]:
    messages = [{"role": "user", "content": question}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def exact_match(model, tokenizer, pairs: list[dict], *, batch_size: int = 64) -> float:
    """Share of questions whose greedy answer equals the reference (whitespace-normalised)."""
    import torch

    if not pairs:
        return 0.0
    answer_tokens = max(len(tokenizer(p["answer"], add_special_tokens=False)["input_ids"]) for p in pairs)
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, len(pairs), batch_size):
                batch = pairs[start:start + batch_size]
                prompts = [tokenizer.apply_chat_template(_messages(p["question"]), tokenize=False, add_generation_prompt=True)
                           for p in batch]
                enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
                out = model.generate(**enc, max_new_tokens=answer_tokens + 2, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
                for row, pair in zip(out, batch):
                    text = tokenizer.decode(row[enc["input_ids"].shape[1]:], skip_special_tokens=True)
                    correct += " ".join(text.split()) == " ".join(pair["answer"].split())
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return correct / len(pairs)


def _progress_callback(reporter: Reporter, max_steps: int, tokens_per_step_fn):
    from transformers import TrainerCallback

    class ReportProgress(TrainerCallback):
        """Streams step metrics to the reporter and stops the trainer when the owner cancels."""

        def __init__(self):
            self.started = None
            self.cancelled = False
            self.losses: list[float] = []
            self.tokens_seen = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            step = state.global_step
            elapsed = time.monotonic() - self.started
            per_step = elapsed / max(step, 1)
            # TRL counts the tokens it trained on; other trainers leave an estimate from the data.
            tokens = float(logs.get("num_tokens") or state.num_input_tokens_seen or tokens_per_step_fn() * step)
            self.tokens_seen = tokens
            self.losses.append(float(logs["loss"]))
            reporter.metric(step=step, epoch=round(float(state.epoch or 0), 4), loss=float(logs["loss"]),
                            learning_rate=float(logs.get("learning_rate", 0.0)),
                            grad_norm=float(logs.get("grad_norm", 0.0) or 0.0),
                            tokens_per_s=round(tokens / elapsed, 1) if elapsed > 0 else 0.0,
                            eta_s=round(per_step * (max_steps - step), 1))
            reporter.progress(step / max_steps, f"Step {step} of {max_steps}")

        def on_step_end(self, args, state, control, **kwargs):
            if reporter.should_stop():
                self.cancelled = True
                control.should_training_stop = True

    return ReportProgress()


def train(config: TrainConfig, reporter: Reporter) -> dict:
    """Fine-tune, measure exact match before and after, save the adapter (or model) and zip it.

    Side effects: writes `output_dir/model/` and `output_dir/<name>.zip`. Raises Cancelled or ReadableError."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    if not config.pairs:
        raise ReadableError("There are no question-answer pairs to train on.")
    if config.method not in {"lora", "full"}:
        raise ReadableError(f"Unknown training method '{config.method}'. Choose 'lora' or 'full'.")

    reporter.phase("loading model", f"Loading {config.base_model}")
    import datasets
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from workers.tiny_model import TINY_MODEL_ID, build_tiny_gemma3

    datasets.disable_progress_bars()  # progress goes to the reporter, not to stderr
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    base_path = config.base_model
    if config.base_model == TINY_MODEL_ID:
        corpus = [f"{p['question']} {p['answer']}" for p in config.pairs]
        base_path = str(build_tiny_gemma3(output_dir / "base", corpus, seed=config.seed))
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_path)
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ReadableError(f"Could not load the base model '{config.base_model}': {exc}") from exc
    if tokenizer.chat_template is None:
        raise ReadableError("The base model has no chat template; pick an instruction-tuned model or the tiny model.")
    torch.manual_seed(config.seed)

    em_before = None
    if config.evaluate:
        reporter.phase("evaluating base model", "Measuring exact match before training")
        em_before = exact_match(model, tokenizer, config.pairs)
        reporter.log(f"Exact match before training: {em_before:.3f}")
        if reporter.should_stop():
            raise Cancelled()

    reporter.phase("preparing data", f"{len(config.pairs)} examples")
    dataset = Dataset.from_list([{"messages": _messages(p["question"], p["answer"])} for p in config.pairs])
    mean_tokens = sum(len(tokenizer(p["question"] + " " + p["answer"])["input_ids"]) + 8 for p in config.pairs) / len(config.pairs)
    peft_config = None
    if config.method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 task_type="CAUSAL_LM", target_modules="all-linear")
    use_cpu = not torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(output_dir / "checkpoints"), max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
        lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to=[],
        max_length=config.max_length, assistant_only_loss=True, use_cpu=use_cpu,
        bf16=not use_cpu and torch.cuda.is_bf16_supported(), seed=config.seed, disable_tqdm=True, log_level="error",
        dataloader_num_workers=0,
    )
    callback = _progress_callback(reporter, config.max_steps, lambda: mean_tokens * config.batch_size)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, peft_config=peft_config,
                         args=args, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # progress goes to the reporter, not to stdout
    reporter.phase("training", f"{config.max_steps} steps, {config.method}")
    train_started = time.monotonic()
    trainer.train()
    train_seconds = time.monotonic() - train_started
    if callback.cancelled:
        raise Cancelled()
    steps = trainer.state.global_step
    tokens = callback.tokens_seen or mean_tokens * config.batch_size * steps

    em_after = None
    if config.evaluate:
        reporter.phase("evaluating tuned model", "Measuring exact match after training")
        em_after = exact_match(trainer.model, tokenizer, config.pairs)
        reporter.log(f"Exact match after training: {em_after:.3f}")

    reporter.phase("saving", "Writing the adapter" if config.method == "lora" else "Writing the model")
    model_dir = output_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    trainer.model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    archive = output_dir / ("adapter.zip" if config.method == "lora" else "model.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(model_dir))
    reporter.progress(1.0, "Done")
    return {
        "train_steps": steps,
        "loss_first": callback.losses[0] if callback.losses else None,
        "loss_last": callback.losses[-1] if callback.losses else None,
        "em_before": em_before,
        "em_after": em_after,
        "tokens_per_s": round(tokens / train_seconds, 1) if train_seconds > 0 else None,
        "train_seconds": round(train_seconds, 2),
        "seconds": round(time.monotonic() - started, 2),
        "artifact": str(archive),
        "examples": len(config.pairs),
        "config": {k: v for k, v in asdict(config).items() if k != "pairs"},
    }
