"""The reference GRPO recipe at the scale of one GPU and a few minutes: GSM8K accuracy and format rate of a real
small model before and after GRPO with format + correctness rewards (after a short SFT warm-up on the format).

    python bench/grpo_gsm8k_gpu.py [MODEL] [STEPS] [EVAL_PROBLEMS] [BACKEND]

MODEL is a catalogue id (default pypi/SmolLM2-135M-Instruct, from its PyPI package) or a model folder. Both
evaluations use the same first EVAL_PROBLEMS GSM8K test problems (0: none), greedy, the recipe's system prompt.
BACKEND is trl (default) or unsloth. Prints one JSON line per stage and a
summary line; figures go to bench/RESULTS.md."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch

    from workers.common.evaluation import BenchmarkSpec
    from workers.engine.evaluate.benchmarks import load_gsm8k, run_benchmark
    from workers.engine.weights import model_source
    from workers.common.rl import RECIPE_REWARDS, RECIPE_SETTINGS, GRPOTrainConfig
    from workers.engine.rl.grpo import grpo_train
    from workers.engine.inference import ModelRef, clear_cache, generate
    from workers.engine.reporting import RecordingReporter

    model = sys.argv[1] if len(sys.argv) > 1 else "pypi/SmolLM2-135M-Instruct"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    problems = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    backend = sys.argv[4] if len(sys.argv) > 4 else "trl"
    settings = {k: v for k, v in RECIPE_SETTINGS.items() if not k.startswith("benchmark_")}
    spec = BenchmarkSpec(benchmark="gsm8k", system_prompt=settings["system_prompt"], limit=problems,
                         max_new_tokens=256, batch_size=64)

    def evaluate(path: str, stage: str) -> dict:
        if not problems:
            return {"accuracy": None, "format_rate": None}
        started = time.monotonic()
        result = run_benchmark(spec, lambda conversations, **kw: generate(ModelRef(path), conversations, **kw),
                               RecordingReporter())
        clear_cache()
        figures = {"stage": stage, "accuracy": result["accuracy"], "format_rate": result["format_rate"],
                   "n": result["n"], "seconds": round(time.monotonic() - started, 1)}
        print(json.dumps(figures), flush=True)
        return figures

    base_path = model_source(model)
    before = evaluate(base_path, "base")
    prompts = [{"prompt": p["question"], "answer": p["answer"], "solution": p["solution"]} for p in load_gsm8k("train")]
    torch.cuda.reset_peak_memory_stats()
    started = time.monotonic()
    result = grpo_train(GRPOTrainConfig(base_model=model, output_dir="/tmp/grpo-gsm8k", prompts=prompts,
                                        rewards=RECIPE_REWARDS, **{**settings, "max_steps": steps},
                                        backend=backend, save_merged=True), RecordingReporter())
    train_seconds = round(time.monotonic() - started, 1)
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(json.dumps({"stage": "grpo", "steps": result["train_steps"], "seconds": train_seconds, "peak_gib": peak,
                      "reward_first": result["reward_first"], "reward_last": result["reward_last"],
                      "rewards": result["rewards"]}), flush=True)
    after = evaluate(str(Path("/tmp/grpo-gsm8k") / "merged"), "tuned")
    print(json.dumps({"model": model, "backend": result["backend"], "gpu": torch.cuda.get_device_name(0),
                      "grpo_steps": result["train_steps"],
                      "warmup_steps": settings["warmup_steps"], "eval_problems": problems,
                      "accuracy": [before["accuracy"], after["accuracy"]],
                      "format_rate": [before["format_rate"], after["format_rate"]], "train_seconds": train_seconds,
                      "peak_gib": peak}), flush=True)


if __name__ == "__main__":
    main()
