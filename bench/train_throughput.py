"""Training throughput: our engine (progress events in the database, websocket publishing, cancel checks)
against plain TRL + PEFT on the same tiny model, data, sequence length and steps, alternating in one run.

    python -m garage.embedded -- .venv/bin/python bench/train_throughput.py [--steps 200] [--rounds 2]

Prints tokens/s and peak RSS growth of each run and the ratio ours / plain. Target on a CPU: overhead ≤ 3 %."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="garage-train-bench-"))
os.environ["GARAGE_VAR_DIR"] = str(WORK)
os.environ["DATABASE_URL"] = f"sqlite:///{WORK / 'bench.sqlite3'}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garage.settings")
os.environ["HF_HUB_OFFLINE"] = "1"

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
from django.core.management import call_command  # noqa: E402

from workers.engine.data.generate import extractive_pairs  # noqa: E402
from workers.engine.data.chunking import chunk_text  # noqa: E402
from workers.engine.extract import extract_file  # noqa: E402
from workers.engine.train.tiny_model import build_tiny_gemma3  # noqa: E402
from workers.engine.train.train import TrainConfig, _messages, train  # noqa: E402


class PeakRss:
    """Samples this process's resident memory every 20 ms; reports the growth above the start."""

    def __enter__(self):
        self.process, self.start, self.peak, self.done = psutil.Process(), psutil.Process().memory_info().rss, 0, False
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.done:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.done = True
        self.thread.join()

    @property
    def growth_mib(self) -> float:
        return max(0, self.peak - self.start) / 2**20


def sample_pairs() -> list[dict]:
    extracted = extract_file(ROOT / "samples" / "lumen-valley-field-guide.md")
    return [{"question": p.question, "answer": p.answer}
            for p in extractive_pairs([c.text for c in chunk_text(extracted.text)])]


def run_ours(pairs, steps, batch, out) -> tuple[float, float, float]:
    from apps.accounts.models import User
    from apps.core.models import Job
    from workers.jobs import JobReporter

    user, _ = User.objects.get_or_create(email="bench@localhost")
    job = Job.objects.create(owner=user, kind=Job.Kind.TRAIN, status=Job.Status.RUNNING)
    with PeakRss() as rss:
        result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(out), pairs=pairs, max_steps=steps,
                                   batch_size=batch, evaluate=False), JobReporter(job))
    events = job.events.count()
    return result["tokens_per_s"], rss.growth_mib, events


def run_plain(pairs, steps, batch, out) -> tuple[float, float]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    base = build_tiny_gemma3(out / "base", [f"{p['question']} {p['answer']}" for p in pairs], seed=0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    torch.manual_seed(0)
    dataset = Dataset.from_list([{"messages": _messages(p["question"], p["answer"])} for p in pairs])
    defaults = TrainConfig(base_model="", output_dir="")
    args = SFTConfig(output_dir=str(out / "checkpoints"), max_steps=steps, per_device_train_batch_size=batch,
                     learning_rate=defaults.learning_rate, lr_scheduler_type="constant", logging_steps=steps,
                     save_strategy="no", report_to=[], max_length=defaults.max_length, assistant_only_loss=True,
                     use_cpu=True, bf16=False, seed=0, disable_tqdm=True, log_level="error", dataloader_num_workers=0)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, args=args,
                         peft_config=LoraConfig(r=defaults.lora_r, lora_alpha=defaults.lora_alpha, task_type="CAUSAL_LM",
                                                target_modules="all-linear"))
    trainer.remove_callback(PrinterCallback)  # keep the benchmark's output readable
    with PeakRss() as rss:
        started = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - started
    tokens = next(h["num_tokens"] for h in reversed(trainer.state.log_history) if "num_tokens" in h)
    return tokens / seconds, rss.growth_mib


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    pairs = sample_pairs()
    import torch
    import transformers
    import trl

    print(f"Training throughput, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}; tiny Gemma 3, "
          f"LoRA r16, {len(pairs)} pairs, batch {args.batch}, {args.steps} steps, max length 96")
    transformers.logging.disable_progress_bar()
    # One short run of each first: imports, allocator growth and first-call costs stay out of the figures.
    run_ours(pairs, 10, args.batch, Path(tempfile.mkdtemp(dir=WORK)))
    run_plain(pairs, 10, args.batch, Path(tempfile.mkdtemp(dir=WORK)))
    ours, plain = [], []
    for round_ in range(args.rounds):
        # Alternate the order each round so a slow patch of the machine hits both sides.
        order = ["ours", "plain"] if round_ % 2 == 0 else ["plain", "ours"]
        for which in order:
            out = Path(tempfile.mkdtemp(dir=WORK))
            if which == "ours":
                tps, mib, events = run_ours(pairs, args.steps, args.batch, out)
                ours.append((tps, mib))
                print(f"  round {round_ + 1} ours : {tps:9.1f} tokens/s  peak RSS +{mib:6.1f} MiB  ({events} job events written)")
            else:
                tps, mib = run_plain(pairs, args.steps, args.batch, out)
                plain.append((tps, mib))
                print(f"  round {round_ + 1} plain: {tps:9.1f} tokens/s  peak RSS +{mib:6.1f} MiB")
    ours_tps, plain_tps = statistics.median(t for t, _ in ours), statistics.median(t for t, _ in plain)
    overhead = 1 - ours_tps / plain_tps
    print(f"median tokens/s: ours {ours_tps:.1f}, plain TRL {plain_tps:.1f}; ratio ours/plain {ours_tps / plain_tps:.3f} "
          f"(overhead {overhead * 100:+.1f} %, target ≤ 3 %: {'PASS' if overhead <= 0.03 else 'FAIL'})")
    print(f"peak RSS growth: ours {max(m for _, m in ours):.1f} MiB, plain {max(m for _, m in plain):.1f} MiB")


if __name__ == "__main__":
    main()
