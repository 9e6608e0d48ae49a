"""GPU training throughput: raw Unsloth, our engine on Unsloth, and plain TRL + PEFT, on a randomly
initialised model of the Gemma 3 1B architecture (no weights needed for speed and memory).

    python bench/train_throughput_gpu.py all [DIR]     # builds the model, then runs every mode, each in its own process
    python bench/train_throughput_gpu.py MODE DIR      # one of: make raw_unsloth ours_unsloth plain_trl ours_qlora ours_qlora_trl

Each mode prints one JSON line: tokens/s over steps WARM..STEPS and peak GPU memory. LoRA r16 on all linear
layers, sequence 1024, batch 8, bf16, the same chat-formatted data for every mode. "ours" runs workers.engine.train.train with a
reporter that keeps events in memory: the database and websocket cost of events is measured on the CPU by
bench/train_throughput.py."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SEQ, BATCH, STEPS, WARM = int(os.environ.get("SEQ", 1024)), int(os.environ.get("BS", 8)), int(os.environ.get("STEPS", 40)), 10
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.0)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODES = ["raw_unsloth", "raw_unsloth_same_args", "ours_unsloth", "plain_trl", "ours_qlora", "ours_qlora_trl"]


def pairs(n=400, seed=0) -> list[dict]:
    """Long random answers: every example fills the whole sequence after truncation."""
    rnd = random.Random(seed)
    words = lambda k: " ".join(f"w{rnd.randrange(30000)}" for _ in range(k))  # noqa: E731
    return [{"question": words(8), "answer": words(SEQ)} for _ in range(n)]


def word_tokenizer():
    """One token per word w0..w29999, with Gemma's chat template: sequence lengths are exact."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from workers.common.catalogue import GEMMA_CHAT_TEMPLATE
    from workers.engine.train.tiny_model import SPECIAL_TOKENS

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + ["<unk>", "user", "model"])}
    vocab.update({f"w{i}": len(vocab) + i for i in range(30000)})
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<end_of_turn>",
                                   pad_token="<pad>", unk_token="<unk>", chat_template=GEMMA_CHAT_TEMPLATE)


def make(out: str) -> None:
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    hf = word_tokenizer()
    config = Gemma3TextConfig(vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
                              num_attention_heads=4, num_key_value_heads=1, head_dim=256, max_position_embeddings=32768,
                              sliding_window=512, rope_theta=1000000.0, query_pre_attn_scalar=256, pad_token_id=0,
                              bos_token_id=1, eos_token_id=hf.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    hf.save_pretrained(out)
    print(json.dumps({"made": out, "params": sum(p.numel() for p in model.parameters())}), flush=True)


def our_config(out: str, mode: str, **changes):
    from workers.engine.train.train import TrainConfig

    settings = dict(base_model=out, output_dir=f"/tmp/bench-{mode}", pairs=pairs(), max_steps=STEPS, learning_rate=2e-4,
                    batch_size=BATCH, max_length=SEQ, lora_r=LORA["r"], lora_alpha=LORA["lora_alpha"],
                    train_on_responses_only=False, evaluate=False)
    return TrainConfig(**{**settings, **changes})


def run_baseline(mode: str, out: str) -> dict:
    """Raw Unsloth or plain TRL + PEFT, configured as their documentation shows; raw_unsloth_same_args takes the
    engine's own SFTConfig (workers.engine.train.train.sft_arguments), so that only the engine's callbacks differ."""
    if mode.startswith("raw_unsloth"):
        import unsloth  # noqa: F401  (before transformers and TRL)
        from unsloth import FastLanguageModel
    import torch
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from workers.engine.train.train import prompt_completion_dataset, sft_arguments

    class Timer(TrainerCallback):
        def __init__(self):
            self.at = {}

        def on_step_end(self, args, state, control, **kwargs):
            torch.cuda.synchronize()
            self.at[state.global_step] = time.perf_counter()

    if mode.startswith("raw_unsloth"):
        model, tokenizer = FastLanguageModel.from_pretrained(model_name=out, max_seq_length=SEQ, dtype=torch.bfloat16,
                                                             load_in_4bit=False)
        model = FastLanguageModel.get_peft_model(model, target_modules=TARGETS, use_gradient_checkpointing="unsloth",
                                                 random_state=0, bias="none", **LORA)
    else:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", bias="none", target_modules=TARGETS, **LORA))
    dataset = prompt_completion_dataset(pairs())  # the engine's data format, for every mode
    timer = Timer()
    if mode == "raw_unsloth_same_args":
        args = sft_arguments(our_config(out, mode), steps=STEPS, evaluates=False)
    else:
        args = SFTConfig(output_dir=f"/tmp/bench-{mode}", per_device_train_batch_size=BATCH, max_steps=STEPS,
                         learning_rate=2e-4, logging_steps=10, save_strategy="no", report_to=[], bf16=True,
                         max_length=SEQ, packing=False, seed=0,
                         gradient_checkpointing=mode != "raw_unsloth" or os.environ.get("RAW_GC") == "1")
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, args=args, callbacks=[timer])
    torch.cuda.reset_peak_memory_stats()
    trainer.train()
    seconds = timer.at[STEPS] - timer.at[WARM]
    return {"tokens_per_s": round(SEQ * BATCH * (STEPS - WARM) / seconds),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def run_ours(mode: str, out: str) -> dict:
    import torch

    from workers.engine.reporting import RecordingReporter
    from workers.engine.train.train import train

    class TimedReporter(RecordingReporter):
        """Keeps the time of each step's metrics (logged every step, which synchronises with the GPU)."""

        def __init__(self):
            super().__init__()
            self.at = {}

        def metric(self, **values):
            super().metric(**values)
            self.at[values["step"]] = time.perf_counter()

    method = "qlora" if "qlora" in mode else "lora"
    backend = "trl" if mode.endswith("_trl") else "unsloth"
    steps = STEPS if method == "lora" else 20
    reporter = TimedReporter()
    torch.cuda.reset_peak_memory_stats()
    result = train(our_config(out, mode, method=method, backend=backend, max_steps=steps), reporter)
    seconds = reporter.at[steps] - reporter.at[WARM]
    return {"tokens_per_s": round(SEQ * BATCH * (steps - WARM) / seconds),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "phases": reporter.phases,
            "loss_first": result["loss_first"], "loss_last": result["loss_last"], "backend": result["backend"]}


def main() -> None:
    mode, out = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/tmp/gemma3-1b-random"
    if mode == "all":
        make_ok = subprocess.run([sys.executable, __file__, "make", out]).returncode == 0
        for each in MODES if make_ok else []:
            subprocess.run([sys.executable, __file__, each, out])
        return
    if mode == "make":
        return make(out)
    import torch

    started = time.monotonic()
    try:
        figures = run_ours(mode, out) if mode.startswith("ours") else run_baseline(mode, out)
    except Exception as exc:  # one mode failing must not hide the others' figures
        figures = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    print(json.dumps({"mode": mode, "seq": SEQ, "batch": BATCH, "steps": STEPS, "timed_from": WARM, **figures,
                      "seconds": round(time.monotonic() - started, 1), "gpu": torch.cuda.get_device_name(0),
                      "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
