"""`garage run` starts web and workers, serves pages, and Ctrl-C stops every child."""
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from tests.live import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.mark.timeout(180)
def test_it_runs_everything_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(GARAGE_VAR_DIR=str(tmp_path), REDIS_URL=settings.REDIS_URL, PYTHONUNBUFFERED="1")
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "garage.cli", "run", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "is running" in log.read_text() or process.poll() is not None, 120, what="garage run")
        assert f"http://127.0.0.1:{port}/" in log.read_text()

        def login_page():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).status == 200
            except OSError:
                return False

        wait_for(login_page, 60, interval=0.3, what="the login page")
        wait_for(lambda: log.read_text().count("ready.") >= 4, 90, what="the four workers")
        # Every child's lines carry the time, the level and the child's name; no line per request by default.
        lines = log.read_text()
        for name in ("worker-default", "worker-control", "worker-gpu", "worker-inference"):
            assert re.search(rf"^{TIMESTAMP} INFO \[{name}/MainProcess:\d+\] celery\.apps\.worker: \S+ ready\.$", lines, re.M)
        assert re.search(rf"^{TIMESTAMP} INFO \[web/MainProcess:\d+\] uvicorn\.error: Started server process", lines, re.M)
        assert "uvicorn.access" not in lines
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 5  # web, four workers (and their pool processes)
        workers = {" ".join(child.cmdline()): child for child in children if "celery" in child.cmdline()}
        queues = sorted(cmd.split(" -Q ")[1].split()[0] for cmd in workers if " -Q " in cmd)
        assert queues == ["control", "default", "gpu", "inference"]
        # The reaper's schedule lives in the control worker, out of reach of long jobs on `default`.
        assert [cmd.split(" -Q ")[1].split()[0] for cmd in workers if " -B" in cmd] == ["control"]
        # Every worker process runs from an empty folder of its own, not from where the uploads are.
        assert {child.cwd() for child in workers.values()} == {str(tmp_path / "worker" / "home" / "cwd")}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == []
    finally:
        if process.poll() is None:
            process.kill()
