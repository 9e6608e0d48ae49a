"""Extraction in a child process: killed when the document's time limit passes, held to a memory limit, and
whatever a hostile file does to the PDF or XML parsers (a crash, a runaway allocation) ends there instead of
in the worker. The child (workers.engine.extract.__main__) reports progress as JSON lines on stdout and writes its
result to a file."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workers.common.errors import ReadableError
from workers.common.formats import Limits
from workers.engine.extract.base import Extracted, no_progress, too_slow_message
from workers.common.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
# Seconds the child may take to start (Python and the parsers' imports) beyond the document's limit.
STARTUP_GRACE = 10.0
# TESSDATA_PREFIX: where an administrator put tesseract's language data, for OCR.
CHILD_ENVIRONMENT = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "PYTHONPATH", "VIRTUAL_ENV",
                     "TESSDATA_PREFIX"}


def run_isolated(path: str, *, filename: str, limits: Limits, progress=no_progress,
                 encoding: str | None = None) -> Extracted:
    """Run extract_file on `path` in a child process; returns its Extracted or raises ReadableError.
    An unexpected failure inside the child (our bug) raises RuntimeError with the child's traceback."""
    with tempfile.TemporaryDirectory(prefix="garage-extract-") as folder:
        result_path = Path(folder) / "result.json"
        stderr_path = Path(folder) / "stderr.txt"
        # The child runs in the project folder, so a relative path must not stay relative.
        path = os.path.abspath(path)
        command = [sys.executable, "-m", "workers.engine.extract", path, "--filename", filename or Path(path).name,
                   "--result", str(result_path), "--limits", json.dumps(limits.as_dict())]
        if encoding:
            command += ["--encoding", encoding]
        # The child sees none of the server's secrets (database URL, keys): only what Python itself needs.
        env = {k: v for k, v in os.environ.items() if k in CHILD_ENVIRONMENT}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        # Tesseract reads a page faster on one thread than on several (its threads mostly wait on each other),
        # and leaves the other cores to other documents.
        env["OMP_THREAD_LIMIT"] = "1"
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
