"""The pre-flight planner's estimates against measured peaks and step times, on this machine's device.

    python bench/planner_accuracy.py gpu [DIR]   # random-init Gemma 3 1B architecture; TRL and Unsloth; several shapes
    python bench/planner_accuracy.py cpu         # random-init SmolLM2-135M architecture, float32, TRL

GPU: the measured peak is torch.cuda.max_memory_allocated (tensors only), compared with the estimate less its fixed
overhead (CUDA context). CPU: the measured peak is the training process's maximum resident memory (ru_maxrss),
compared with the whole estimate. Each line prints estimate, measurement and the error in percent; the last line
the mean and worst absolute error. Step time: median of the timed steps after the first (compile, warm-up)."""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The shapes the factors were fitted on; PLAN_SHAPES="trl:1x4096,unsloth:16x1024" checks others (out of sample).
GPU_SHAPES = {"trl": [(4, 512), (8, 1024), (2, 2048), (16, 512)], "unsloth": [(8, 1024), (4, 2048)]}
CPU_SHAPES = [(2, 128), (4, 256), (8, 256)]
STEPS = 6


def pairs(length: int, n: int = 64) -> list[dict]:
    import random

    rnd = random.Random(0)
    return [{"question": " ".join(f"w{rnd.randrange(30000)}" for _ in range(8)),
             "answer": " ".join(f"w{rnd.randrange(30000)}" for _ in range(length))} for _ in range(n)]


def one_run(model_dir: str, backend: str, batch: int, length: int) -> dict:
    """Train STEPS steps with our engine and return measured peak and step time beside the planner's estimate."""
    import torch

    from workers.common.catalogue import model_facts
    from workers.common.planner import estimate
    from workers.engine.train.device import measure_device
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

    device = measure_device()
    facts = model_facts(model_dir, model_dir)
    architecture = facts["architecture"]
    plan = estimate(architecture=architecture, parameters=architecture.parameters(), method="lora", backend=backend,
                    batch_size=batch, max_length=length, lora_r=16, device=device)
    if device.kind == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    reporter = Timed()
    train(TrainConfig(base_model=model_dir, output_dir=f"/tmp/plan-{backend}-{batch}-{length}", pairs=pairs(length),
                      backend=backend, max_steps=STEPS, batch_size=batch, max_length=length, learning_rate=1e-4,
                      train_on_responses_only=False, evaluate=False, lora_r=16, lora_alpha=32), reporter)
    if device.kind == "cuda":
        measured = torch.cuda.max_memory_allocated()
        estimated = plan.peak_bytes - plan.breakdown["overhead"]
    else:
        measured = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        estimated = plan.peak_bytes
    step = statistics.median(b - a for a, b in zip(reporter.at[1:], reporter.at[2:]))
    return {"backend": backend, "batch": batch, "length": length, "device": device.name,
            "estimated_gib": round(estimated / 2**30, 3), "measured_gib": round(measured / 2**30, 3),
            "memory_error_pct": round(100 * (estimated - measured) / measured, 1),
            "estimated_step_s": plan.seconds_per_step, "measured_step_s": round(step, 4),
            "time_error_pct": round(100 * (plan.seconds_per_step - step) / step, 1),
            "breakdown_gib": {k: round(v / 2**30, 3) for k, v in plan.breakdown.items()}}


def make_cpu_model(out: str) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from bench.train_throughput_gpu import word_tokenizer

    tokenizer = word_tokenizer()
    tokenizer.save_pretrained(out)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)


def main() -> None:
    mode = sys.argv[1]
    if mode == "one":  # a single run in its own process, so each peak is its own
        _, _, model_dir, backend, batch, length = sys.argv
        print("RESULT " + json.dumps(one_run(model_dir, backend, int(batch), int(length))), flush=True)
        return
    runs = []
    if mode == "gpu":
        model_dir = sys.argv[2] if len(sys.argv) > 2 else "/tmp/gemma3-1b-random"
        if not Path(model_dir, "config.json").exists():
            subprocess.run([sys.executable, str(ROOT / "bench" / "train_throughput_gpu.py"), "make", model_dir], check=True)
        shapes = [(backend, b, s) for backend, sizes in GPU_SHAPES.items() for b, s in sizes]
        if os.environ.get("PLAN_SHAPES"):
            shapes = [(item.split(":")[0], *map(int, item.split(":")[1].split("x")))
                      for item in os.environ["PLAN_SHAPES"].split(",")]
    else:
        model_dir = "/tmp/smollm2-135m-random"
        if not Path(model_dir, "config.json").exists():
            make_cpu_model(model_dir)
        shapes = [("trl", b, s) for b, s in CPU_SHAPES]
    for backend, batch, length in shapes:
        done = subprocess.run([sys.executable, __file__, "one", model_dir, backend, str(batch), str(length)],
                              capture_output=True, text=True)
        lines = [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            print(json.dumps({"backend": backend, "batch": batch, "length": length, "error": done.stderr[-800:]}), flush=True)
            continue
        runs.append(json.loads(lines[0]))
        print(lines[0], flush=True)
    if runs:
        memory = [abs(r["memory_error_pct"]) for r in runs]
        timing = [abs(r["time_error_pct"]) for r in runs]
        print(json.dumps({"runs": len(runs), "memory_error_mean_pct": round(statistics.mean(memory), 1),
                          "memory_error_worst_pct": max(memory), "time_error_mean_pct": round(statistics.mean(timing), 1),
                          "time_error_worst_pct": max(timing)}), flush=True)


if __name__ == "__main__":
    main()
