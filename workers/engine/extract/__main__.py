"""The extraction child process that workers.engine.extract.isolated starts (`python -m workers.engine.extract`); not
meant to be run by hand. It holds itself to the document's memory and CPU limits, reports progress as JSON lines on
stdout and writes its result to a file, which the parent reads back."""
import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

from workers.common.errors import ReadableError
from workers.common.formats import Limits
from workers.engine.extract import extract_file
from workers.engine.extract.isolated import STARTUP_GRACE

PROGRESS_INTERVAL = 0.25


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
    parser.add_argument("--encoding", default=None)
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

    status = 0
    try:
        result = {"ok": True, "extracted": extract_file(args.path, filename=args.filename, limits=limits,
                                                        progress=progress, encoding=args.encoding).as_dict()}
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


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
