"""Production serving: `check --deploy` is clean with the HTTPS settings on, and `garage run --production` serves
pages and hashed, compressed static files from several web processes, refusing settings unfit for it."""
import gzip
import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from tests.live import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def production_env(var_dir: Path, **extra) -> dict:
    """This machine's environment as a production server's: its own var folder, SQLite there, a real key, no DEBUG."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEBUG", "GARAGE_HTTPS")}
    env.update(GARAGE_VAR_DIR=str(var_dir), REDIS_URL=settings.REDIS_URL, SECRET_KEY=secrets.token_urlsafe(50),
               PYTHONUNBUFFERED="1", **extra)
    return env


def check_deploy(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "garage.cli", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(120)
def test_check_deploy_is_clean_when_served_over_https(tmp_path):
    done = check_deploy(production_env(tmp_path, GARAGE_HTTPS="1", ALLOWED_HOSTS="garage.example.com"))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not re.search(r"\.W\d{3}", output), output
    assert "no issues" in output


@pytest.mark.timeout(120)
def test_check_deploy_names_what_plain_http_leaves_open(tmp_path):
    done = check_deploy(production_env(tmp_path, ALLOWED_HOSTS="garage.example.com"))
    assert done.returncode == 1
    warned = set(re.findall(r"security\.W\d{3}", done.stderr))
    # HSTS, the redirect to HTTPS and both cookies over HTTPS only: what GARAGE_HTTPS=1 turns on.
    assert warned == {"security.W004", "security.W008", "security.W012", "security.W016"}


@pytest.mark.parametrize(("variables", "refusal"), [
    ({"DEBUG": True}, "DEBUG is on"),
    ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
    ({"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(50)}, "SECRET_KEY is too easy to guess"),
    ({"SECRET_KEY": "abcd" * 20}, "SECRET_KEY is too easy to guess"),
])
def test_production_refuses_settings_unfit_for_it(variables, refusal, settings, monkeypatch):
    settings.DEBUG = variables.get("DEBUG", False)
    monkeypatch.setenv("SECRET_KEY", variables.get("SECRET_KEY", secrets.token_urlsafe(50)))
    with pytest.raises(CommandError, match=refusal):
        call_command("run", production=True, no_worker=True)


def test_production_refuses_fewer_than_one_web_process():
    with pytest.raises(CommandError, match="at least one process"):
        call_command("run", production=True, no_worker=True, workers=0)


@pytest.mark.timeout(90)
def test_production_serves_pages_and_hashed_compressed_static_files_then_stops_cleanly(tmp_path):
    port = free_port()
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "garage.cli", "run", "--production", "--no-worker", "--workers", "2",
             "--port", str(port)],
            cwd=ROOT, env=production_env(tmp_path / "var"), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "is running" in log.read_text() or process.poll() is not None, 75, what="garage run")
        assert "is running (production, 2 web processes)" in log.read_text(), log.read_text()

        def login_page():
            try:
                with urllib.request.urlopen(f"{base}/accounts/login/", timeout=2) as response:
                    return response.read().decode()
            except OSError:
                return None

        html = wait_for(login_page, 30, interval=0.2, what="the login page")
        # The page names the stylesheet by a hash of its content, which is what lets browsers keep it for good.
        css_url, name, content_hash = re.search(r'href="(/static/(garage/garage)\.([0-9a-f]{12})\.css)"', html).groups()
        collected = (tmp_path / "var" / "static" / f"{name}.{content_hash}.css").read_bytes()
        assert hashlib.md5(collected).hexdigest()[:12] == content_hash

        request = urllib.request.Request(base + css_url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert "immutable" in response.headers["Cache-Control"]
            assert "max-age=315360000" in response.headers["Cache-Control"]
            assert gzip.decompress(response.read()) == collected
        with urllib.request.urlopen(base + css_url, timeout=5) as response:
            assert response.headers.get("Content-Encoding") is None
            assert response.read() == collected

        # Several web processes under one uvicorn, none of them reloading on file changes.
        children = psutil.Process(process.pid).children(recursive=True)
        uvicorn = next(child for child in children if "uvicorn" in child.cmdline())
        assert "--reload" not in uvicorn.cmdline()
        # (Beside them, multiprocessing's resource tracker.)
        assert sum("spawn_main" in " ".join(child.cmdline()) for child in uvicorn.children()) == 2

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        # On a failure, the web processes too: killing `garage run` alone would leave uvicorn serving.
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
