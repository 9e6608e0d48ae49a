"""The training device, measured: its memory and a short matrix-multiply timing. A GPU worker runs this module in a
child process when it starts (workers.common.planner.record_device), so that torch and a CUDA context never enter
the worker's main process."""
from __future__ import annotations

import os
import sys
import time

from workers.common.planner import Device, available_ram, device_facts, write_device_facts


def measure_device() -> Device:
    """The device training would run on, with its memory and a short matrix-multiply timing (about 0.1 s)."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Device("cuda", props.name, props.total_memory, _matmul_flops(torch, "cuda", torch.bfloat16, 4096))
    memory = available_ram()
    return Device("cpu", f"CPU ({os.cpu_count()} cores)", memory, _matmul_flops(torch, "cpu", torch.float32, 512))


def _matmul_flops(torch, device: str, dtype, n: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: kernel selection, allocation
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    repeats, started = 0, time.perf_counter()
    while repeats < 3 or time.perf_counter() - started < 0.05:
        a @ b
        repeats += 1
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def measure_device_settled(tries: int = 3, pause: float = 1.0) -> Device:
    """The device at its best of a few measurements a moment apart: at a worker's start-up the machine is busy
    starting the rest, and what the record should say is what the device can do."""
    best = None
    for attempt in range(tries):
        if attempt:
            time.sleep(pause)
        device = measure_device()
        if best is None or device.matmul_flops > best.matmul_flops:
            best = device
    return best


if __name__ == "__main__":  # python -m workers.engine.train.device record PATH (what record_device runs)
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        write_device_facts(device_facts(measure_device_settled()), sys.argv[2])
    else:
        raise SystemExit("usage: python -m workers.engine.train.device record PATH")
