"""Extraction in a child process: killed when the document's time limit passes, held to a memory limit, and
whatever a hostile file does to the PDF or XML parsers (a crash, a runaway allocation) ends there instead of
in the worker. The child reports progress as JSON lines on stdout and writes its result to a file."""
from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from workers.common.errors import ReadableError
from workers.common.formats import Limits
from workers.engine.extract.base import Extracted, no_progress, too_slow_message
from workers.common.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
# Seconds the child may take to start (Python and the parsers' imports) beyond the document's limit.
STARTUP_GRACE = 10.0
PROGRESS_INTERVAL = 0.25
CHILD_ENVIRONMENT = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "PYTHONPATH", "VIRTUAL_ENV"}


def run_isolated(path: str, *, filename: str, limits: Limits, progress=no_progress) -> Extracted:
    """Run extract_file on `path` in a child process; returns its Extracted or raises ReadableError.
    An unexpected failure inside the child (our bug) raises RuntimeError with the child's traceback."""
    with tempfile.TemporaryDirectory(prefix="garage-extract-") as folder:
        result_path = Path(folder) / "result.json"
        stderr_path = Path(folder) / "stderr.txt"
        # The child runs in the project folder, so a relative path must not stay relative.
        path = os.path.abspath(path)
        command = [sys.executable, "-m", "workers.engine.extract", path, "--filename", filename or Path(path).name,
                   "--result", str(result_path), "--limits", json.dumps(limits.as_dict())]
        # The child sees none of the server's secrets (database URL, keys): only what Python itself needs.
        env = {k: v for k, v in os.environ.items() if k in CHILD_ENVIRONMENT}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                       cwd=ROOT, env=env)
            try:
                _follow(process, progress, deadline=time.monotonic() + limits.time_limit + STARTUP_GRACE)
            except TimeoutError:
                raise ReadableError(too_slow_message(limits.time_limit)) from None
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
                process.stdout.close()
        return _result(process.returncode, result_path, stderr_path, filename=filename or Path(path).name, limits=limits)


def _follow(process: subprocess.Popen, progress, *, deadline: float) -> None:
    """Pass the child's progress lines on until it closes its output; TimeoutError past the deadline."""
    fd = process.stdout.fileno()
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not selector.select(timeout=min(remaining, 1.0)):
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            *lines, buffer = (buffer + data).split(b"\n")
            for line in lines:
                try:
                    event = json.loads(line)
                    progress(float(event["progress"]), str(event.get("message", "")))
                except (ValueError, KeyError, TypeError):
                    continue
    remaining = deadline - time.monotonic()
    try:
        process.wait(timeout=max(0.1, remaining))
    except subprocess.TimeoutExpired:
        raise TimeoutError from None


def _result(returncode: int, result_path: Path, stderr_path: Path, *, filename: str, limits: Limits) -> Extracted:
    result = None
    if result_path.exists():
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except ValueError:
            result = None
    if result is not None:
        if result.get("ok"):
            return Extracted.from_dict(result["extracted"])
        if "error" in result:
            raise ReadableError(result["error"])
        raise RuntimeError(f"Extraction of '{filename}' failed inside the extraction process:\n{result.get('internal', '')}")
    if returncode < 0:
        # Killed by a signal: the memory limit (allocation failures inside C code) or a parser crash.
        raise ReadableError(f"Reading '{filename}' made the extractor stop (signal {-returncode}): the file is damaged "
                            f"or needs more than the memory limit of {limits.memory_mb:,} MB. Save it again or split it.")
    tail = stderr_path.read_text(errors="replace")[-3000:] if stderr_path.exists() else ""
    raise RuntimeError(f"The extraction process ended with status {returncode} and no result:\n{tail}")


# ---------------------------------------------------------------------------------------------- the child


def _limit_resources(limits: Limits) -> None:
    import resource

    if limits.memory_mb > 0:
        size = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    # CPU seconds as a backstop: if the parent is gone and nobody kills this process, it still ends.
    seconds = math.ceil(limits.time_limit + STARTUP_GRACE)
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.engine.extract")
    parser.add_argument("path")
    parser.add_argument("--filename", default="")
    parser.add_argument("--result", required=True)
    parser.add_argument("--limits", default="{}")
    args = parser.parse_args(argv)
    limits = Limits(**json.loads(args.limits))
    _limit_resources(limits)
    # Progress goes to the real stdout; anything a library prints goes to stderr instead.
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    last = [0.0]

    def progress(fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - last[0] >= PROGRESS_INTERVAL:
            last[0] = now
            events.write(json.dumps({"progress": round(fraction, 4), "message": message}) + "\n")

    from workers.engine.extract import extract_file

    status = 0
    try:
        result = {"ok": True, "extracted": extract_file(args.path, filename=args.filename, limits=limits,
                                                        progress=progress).as_dict()}
    except ReadableError as exc:
        result = {"ok": False, "error": str(exc)}
    except MemoryError:
        result = {"ok": False, "error": f"'{args.filename}' needs more memory to read than the limit of "
                                        f"{limits.memory_mb:,} MB. Split it into smaller files."}
    except RecursionError:
        result = {"ok": False, "error": f"'{args.filename}' is nested too deeply to read."}
    except Exception:
        result = {"ok": False, "internal": traceback.format_exc()}
        status = 1
    Path(args.result).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    events.close()
    return status
