"""The pre-flight planner: peak memory and time per step of a training run, estimated before any weights load.

Memory is counted from the architecture (workers.common.architecture.Architecture): the weights at their storage size,
the trainable parameters with their gradients and optimizer state, and the activations kept per token, hidden
unit and layer, with factors fitted to measured peaks (bench/planner_accuracy.py; figures and the error in
bench/RESULTS.md).

Time per step comes from the work (about 6 multiply-adds per adapted weight and token with gradient
checkpointing, 8 for full fine-tuning) divided by the device's measured matrix-multiply speed times an
efficiency factor of training as a whole, also fitted by the benchmark.

`estimate` needs no torch: a Device is four plain numbers. The web process, which must not load torch, estimates
for the device the GPU worker measured (workers.engine.train.device) and recorded when it started (record_device,
read back by recorded_device), or, before any worker has, for a guess at its own CPU (local_cpu_device)."""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers.common.architecture import Architecture
from workers.common.paths import PROJECT_ROOT

GIB = 2**30
# Fitted to measured peaks and steps (bench/planner_accuracy.py; figures in bench/RESULTS.md), by device and
# backend: bytes of activation per (token × hidden unit × layer); the share of the device's matmul speed that
# training reaches; and a fixed cost per step (kernel launches of the unfused model). On GPUs, gradient
# checkpointing keeps few activations and neither backend holds the logits over the whole vocabulary at once; on
# CPUs (float32, the process's resident memory, which never shrinks) far more stays.
ACTIVATION_FACTOR = {("cuda", "unsloth"): 3.75, ("cuda", "trl"): 7.8, ("cpu", "unsloth"): 108.0, ("cpu", "trl"): 108.0}
TRAINING_EFFICIENCY = {("cuda", "unsloth"): 0.35, ("cuda", "trl"): 0.29, ("cpu", "unsloth"): 0.5, ("cpu", "trl"): 0.5}
STEP_OVERHEAD_S = {("cuda", "unsloth"): 0.0, ("cuda", "trl"): 0.23, ("cpu", "unsloth"): 0.0, ("cpu", "trl"): 0.0}
# What a run needs beyond its tensors: the CUDA context and kernels, or the Python process with torch loaded.
OVERHEAD_BYTES = {"cuda": 0.6 * GIB, "cpu": 0.62 * GIB}
HEADROOM = 0.92  # plan to use at most this share of the device's memory: fragmentation and other processes


@dataclass
class Device:
    kind: str  # "cuda" or "cpu"
    name: str
    memory_bytes: int  # what training may use: the GPU's total memory, or the machine's available RAM
    matmul_flops: float  # measured multiply-add speed (FLOP/s) in the training dtype

    @classmethod
    def from_dict(cls, values: dict) -> "Device":
        return cls(kind=str(values["kind"]), name=str(values["name"]), memory_bytes=int(values["memory_bytes"]),
                   matmul_flops=float(values["matmul_flops"]))

    @property
    def dtype_bytes(self) -> int:
        return 2 if self.kind == "cuda" else 4  # bf16 on GPUs, float32 on CPUs (most have no fast bf16)


@dataclass
class Plan:
    fits: bool
    peak_bytes: int
    seconds_per_step: float | None
    breakdown: dict  # bytes by part: weights, trainable, activations, logits, overhead
    device: dict
    suggestions: list[str] = field(default_factory=list)

    @property
    def peak_gib(self) -> float:
        return round(self.peak_bytes / GIB, 2)

    def summary(self) -> str:
        speed = f", about {self.seconds_per_step:.2f} s per step" if self.seconds_per_step else ""
        return (f"Estimated peak memory {self.peak_gib} GiB of {self.device['memory_bytes'] / GIB:.1f} GiB "
                f"on {self.device['name']}{speed}.")

    def as_dict(self) -> dict:
        return {**asdict(self), "peak_gib": self.peak_gib}


def available_ram() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:  # Linux without psutil: what the kernel says could be had without swapping
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------------- recorded devices

DEVICE_FACTS_FILE = "device.json"


def device_facts_path(folder: str | Path) -> Path:
    """Where the GPU worker records its device for the web process to read, in `folder` (the var folder, which both
    share on one machine)."""
    return Path(folder) / DEVICE_FACTS_FILE


# A guess per core at what float32 matrix multiplication reaches on a recent x86 CPU (AVX2 and FMA).
FLOPS_PER_CORE_GUESS = 5e10


def local_cpu_device() -> Device:
    """This machine's CPU as a training device, without measuring: the available memory and a guess per core. The web
    process uses it until a worker has recorded its measured device; timing a matrix multiplication here would bring
    numpy into it."""
    cores = os.cpu_count() or 1
    return Device("cpu", f"CPU ({cores} cores)", available_ram(), FLOPS_PER_CORE_GUESS * cores)


def device_facts(device: Device) -> dict:
    """A device as recorded: its numbers, the backends its worker can run, when and where it was measured."""
    import importlib.util

    return {**asdict(device), "unsloth": importlib.util.find_spec("unsloth") is not None,
            "host": socket.gethostname(), "recorded_at": time.time()}


def write_device_facts(facts: dict, path: str | Path) -> Path:
    """Write atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(facts, indent=2))
    partial.replace(path)
    return path


def record_device(path: str | Path, *, wait: bool = False) -> subprocess.Popen | Path:
    """Measure this worker's device and record it at `path`. The measurement runs in
    a child process: torch (and a CUDA context) must not enter the worker's main process, whose forked children
    could no longer use CUDA. Returns the child (wait=False, as at worker start-up) or the path once written."""
    path = Path(path)
    command = [sys.executable, "-m", "workers.engine.train.device", "record", str(path)]
    root = str(PROJECT_ROOT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait:
        threading.Thread(target=child.wait, daemon=True).start()  # reaped when it ends, not left a zombie
        return child
    child.wait(timeout=300)
    return path


def record_device_when_ready(sender, *, folder: str | Path) -> subprocess.Popen | None:
    """For Celery's worker_ready signal (`sender`: the worker's consumer): a worker that consumes the `gpu` queue
    records its device in `folder` (a worker for other queues does not train, so its device says nothing about
    training). Returns the measuring child, or None."""
    queues = {queue.name for queue in getattr(getattr(sender, "task_consumer", None), "queues", None) or []}
    return record_device(device_facts_path(folder)) if "gpu" in queues else None


def recorded_device(path: str | Path) -> Device | None:
    """The device the GPU worker last recorded, or None when none has (or the record cannot be read)."""
    facts = recorded_device_facts(path)
    return Device.from_dict(facts) if facts else None


def recorded_device_facts(path: str | Path) -> dict | None:
    try:
        facts = json.loads(Path(path).read_text())
        Device.from_dict(facts)  # every number present
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return facts


def estimate(*, architecture: Architecture, parameters: int, method: str, backend: str, batch_size: int,
             max_length: int, lora_r: int, device: Device) -> Plan:
    """Peak memory and time per step of one optimizer step of `batch_size` sequences of `max_length` tokens."""
    a, db = architecture, device.dtype_bytes
    linear = a.linear_parameters()
    if method == "qlora":  # NF4: half a byte per weight plus its scales; embeddings and norms stay in bf16
        weights = linear * 0.5 * 1.07 + (parameters - linear) * 2
    else:
        weights = parameters * db
    if method == "full":
        trainable_params = parameters
        trainable = parameters * db * 3  # gradient and two Adam moments, in the weights' dtype
    else:
        trainable_params = a.lora_parameters(lora_r)
        trainable = trainable_params * 4 * 4  # PEFT keeps adapters in float32: weight, gradient, two moments
    tokens = batch_size * max_length
    key = (device.kind, backend)
    activations = ACTIVATION_FACTOR[key] * tokens * a.hidden_size * a.num_hidden_layers
    breakdown = {"weights": int(weights), "trainable": int(trainable), "activations": int(activations),
                 "overhead": int(OVERHEAD_BYTES[device.kind])}
    peak = sum(breakdown.values())
    multiply_adds = 8 if method == "full" else 6
    flops = tokens * (multiply_adds * linear + 6 * a.vocab_size * a.hidden_size)
    seconds = flops / (device.matmul_flops * TRAINING_EFFICIENCY[key]) + STEP_OVERHEAD_S[key] if device.matmul_flops else None
    budget = device.memory_bytes * HEADROOM
    plan = Plan(fits=peak <= budget, peak_bytes=int(peak), seconds_per_step=round(seconds, 4) if seconds else None,
                breakdown=breakdown, device=asdict(device))
    if not plan.fits:
        plan.suggestions = _suggestions(architecture=a, parameters=parameters, method=method, backend=backend,
                                        batch_size=batch_size, max_length=max_length, lora_r=lora_r, device=device)
    return plan


def _suggestions(*, device: Device, method: str, batch_size: int, max_length: int, **settings) -> list[str]:
    """Changes that would fit, cheapest for the result first: a smaller batch (with gradient accumulation the
    effective batch stays), then a shorter sequence, then LoRA instead of full, then QLoRA on a GPU."""
    budget = device.memory_bytes * HEADROOM

    def fits(**changes) -> bool:
        values = {"method": method, "batch_size": batch_size, "max_length": max_length, **settings, **changes}
        return estimate(device=device, **values).peak_bytes <= budget

    found = []
    smaller = batch_size // 2
    while smaller >= 1 and not fits(batch_size=smaller):  # the largest batch that fits, halving
        smaller //= 2
    if smaller >= 1:
        found.append(f"a batch size of {smaller} with gradient accumulation {math.ceil(batch_size / smaller)} "
                     f"(the same effective batch)")
    shorter = max_length // 2
    while shorter >= 64 and not fits(max_length=shorter):
        shorter //= 2
    if shorter >= 64:
        found.append(f"a maximum sequence length of {shorter}")
    if method == "full" and fits(method="lora"):
        found.append("LoRA instead of full fine-tuning")
    if method != "qlora" and device.kind == "cuda" and fits(method="qlora"):
        found.append("QLoRA (4-bit weights)")
    if not found:
        found.append("a smaller model, or a worker with more memory")
    return found
