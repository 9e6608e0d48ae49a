"""The pre-flight planner: estimates that move the right way, suggestions that fit, and refusal before loading."""
import pytest

from workers.common.catalogue import CATALOGUE
from workers.common.errors import ReadableError
from workers.common.planner import GIB, Device, estimate
from workers.engine.train.device import measure_device
from workers.engine.reporting import RecordingReporter
from workers.engine.train.train import TrainConfig, train

H100 = Device("cuda", "NVIDIA H100 80GB HBM3", 80 * GIB, 4e14)
SMALL_GPU = Device("cuda", "8 GB card", 8 * GIB, 5e13)
LAPTOP = Device("cpu", "CPU (8 cores)", 16 * GIB, 2e11)


def plan_for(model="google/gemma-3-1b-it", device=H100, **changes):
    entry = CATALOGUE[model]
    settings = {"method": "lora", "backend": "trl", "batch_size": 8, "max_length": 1024, "lora_r": 16, **changes}
    return estimate(architecture=entry.architecture, parameters=entry.parameters, device=device, **settings)


def test_it_grows_with_batch_and_length_and_orders_the_methods():
    base = plan_for()
    assert plan_for(batch_size=16).peak_bytes > base.peak_bytes
    assert plan_for(max_length=2048).peak_bytes > base.peak_bytes
    assert plan_for(method="qlora").peak_bytes < base.peak_bytes < plan_for(method="full").peak_bytes
    assert plan_for(backend="unsloth").peak_bytes < base.peak_bytes  # no full logits
    assert plan_for(batch_size=16).seconds_per_step > base.seconds_per_step > 0
    # The weights of a 1B model in bf16 are about 2 GB, and the plan counts them.
    assert 1.8 * GIB < base.breakdown["weights"] < 2.1 * GIB
    assert base.fits and base.suggestions == [] and "GiB" in base.summary()


def test_it_suggests_changes_that_fit_when_a_run_does_not():
    plan = plan_for(device=SMALL_GPU, batch_size=16, max_length=2048)
    assert not plan.fits
    # Each suggestion alone fits: the batch and length ones are checked here.
    batch = next(s for s in plan.suggestions if "batch size of" in s)
    assert plan_for(device=SMALL_GPU, batch_size=int(batch.split("batch size of ")[1].split()[0]), max_length=2048).fits
    length = next(s for s in plan.suggestions if "sequence length of" in s)
    assert plan_for(device=SMALL_GPU, batch_size=16, max_length=int(length.split("length of ")[1])).fits
    # A 4B model's bf16 weights alone fill an 8 GB card: only 4-bit weights make it fit.
    plan = plan_for("google/gemma-3-4b-it", device=SMALL_GPU, batch_size=1, max_length=512)
    assert not plan.fits and plan.suggestions == ["QLoRA (4-bit weights)"]
    assert "a smaller model" in plan_for("google/gemma-3n-E4B-it", device=SMALL_GPU).suggestions[0]


def test_it_never_suggests_qlora_on_a_cpu():
    plan = plan_for("google/gemma-3-4b-it", device=LAPTOP, method="full", batch_size=4, max_length=512)
    assert not plan.fits and plan.suggestions
    assert not any("QLoRA" in s for s in plan.suggestions)
    assert any("LoRA instead of full" in s or "smaller model" in s for s in plan.suggestions)


def test_it_measures_this_machines_device():
    device = measure_device()
    assert device.kind in ("cpu", "cuda") and device.memory_bytes > 0 and device.matmul_flops > 1e8


PAIRS = [{"question": f"Where does item{i} live?", "answer": f"Item{i} lives in Paris."} for i in range(8)]


def test_it_refuses_a_run_over_the_memory_limit_before_loading_the_model(tmp_path):
    reporter = RecordingReporter()
    with pytest.raises(ReadableError, match="will not fit.*Try a batch size of"):
        train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, batch_size=64,
                          max_length=512, memory_limit_gib=1.0), reporter)
    assert reporter.metrics == [] and "training" not in reporter.phases


def test_it_records_the_plan_of_a_run_that_fits(tmp_path):
    reporter = RecordingReporter()
    result = train(TrainConfig(base_model="tiny-gemma3", output_dir=str(tmp_path), pairs=PAIRS, max_steps=2,
                               evaluate=False), reporter)
    assert result["plan"]["fits"] and result["plan"]["peak_gib"] > 0
    assert any("Estimated peak memory" in line for line in reporter.lines)
