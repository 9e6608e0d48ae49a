"""A short run of the engine on Unsloth with every data option on: answers-only loss on the model's chat template,
packing, a held-out split measured during training, and the pre-flight plan beside the measured peak.

    python bench/unsloth_features_gpu.py [MODEL_DIR]   # default: the random Gemma 3 1B of train_throughput_gpu.py
    python bench/unsloth_features_gpu.py packing [MODEL_DIR]   # step times with and without packing

Prints one JSON line. A check that the GPU path takes these options (CI covers them on the CPU), not a speed figure."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def compare_packing(model: str) -> None:
    """The same short examples with and without packing: step times and tokens/s of each, one JSON line each."""
    import time

    from bench.train_throughput_gpu import pairs
    from workers.engine.reporting import RecordingReporter
    from workers.engine.train.train import TrainConfig, train

    class Timed(RecordingReporter):
        def __init__(self):
            super().__init__()
            self.at = []

        def metric(self, **values):
            super().metric(**values)
            if "loss" in values:
                self.at.append(time.perf_counter())

    data = [{"question": p["question"], "answer": " ".join(p["answer"].split()[:40])} for p in pairs(n=400)]
    for packing in (False, True):
        reporter = Timed()
        result = train(TrainConfig(base_model=model, output_dir=f"/tmp/packing-{packing}", pairs=data, max_steps=30,
                                   batch_size=8, max_length=512, learning_rate=2e-4, backend="unsloth", packing=packing,
                                   evaluate=False), reporter)
        steps = [round(b - a, 3) for a, b in zip(reporter.at, reporter.at[1:])]
        print(json.dumps({"packing": packing, "step_seconds_first5": steps[:5], "step_seconds_last5": steps[-5:],
                          "steady_tokens_per_s": result["steady_tokens_per_s"], "loss_last": result["loss_last"],
                          "peak_memory_gib": result["peak_memory_gib"]}), flush=True)


def main() -> None:
    from bench.train_throughput_gpu import pairs
    from workers.engine.reporting import RecordingReporter
    from workers.engine.train.train import TrainConfig, train

    packing = sys.argv[1:2] == ["packing"]
    model = (sys.argv[2:3] if packing else sys.argv[1:2]) or ["/tmp/gemma3-1b-random"]
    model = model[0]
    if not Path(model, "config.json").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "train_throughput_gpu.py"), "make", model], check=True)
    if packing:
        return compare_packing(model)
    data = [{"question": p["question"], "answer": " ".join(p["answer"].split()[:40])} for p in pairs(n=240)]
    reporter = RecordingReporter()
    result = train(TrainConfig(base_model=model, output_dir="/tmp/unsloth-features", pairs=data[:200], eval_pairs=data[200:],
                               eval_every=10, max_steps=20, batch_size=8, max_length=512, learning_rate=2e-4,
                               backend="unsloth", packing=True, train_on_responses_only=True, evaluate=False), reporter)
    print(json.dumps({k: result[k] for k in ("backend", "train_steps", "loss_first", "loss_last", "eval_losses",
                                             "peak_memory_gib", "steady_tokens_per_s", "lora_target_modules")}
                     | {"plan_peak_gib": result["plan"]["peak_gib"], "phases": reporter.phases}), flush=True)


if __name__ == "__main__":
    main()
