"""Latency benchmarks of the job system against the real Redis, a real Celery worker and a real uvicorn server.

    python -m garage.embedded -- .venv/bin/python bench/latency.py [--events 300]     (or: make bench)

Two figures, each printed beside a baseline measured in the same run (interleaved with it), so that the
ratio still means something on a noisy machine:

1. enqueue → task start (target p95 < 50 ms)
   ours:     a timestamp just before job_create() (in a transaction, so the task is sent on commit)
             → Job.started_at, set by job_claim() in the worker when the row flips to RUNNING.
   baseline: a timestamp just before app.send_task("bench.noop") → the first line of that task's body,
             on the same worker.
2. worker event → websocket client (target p95 < 100 ms)
   ours:     `sent_at` taken by the diagnostic `sleep` job just before JobReporter.metric() (event row
             written, then group_send) → the moment a websocket client signed in with a session cookie
             receives the update from the real ASGI app (garage.asgi under uvicorn).
   baseline: a bare channels group_send from the same worker (called as job_publish calls it) → a bare
             consumer (bench/bare_asgi.py) under its own uvicorn → the same kind of websocket client.
   variant:  the same bare group_send, but on one event loop kept open for the whole task instead of
             async_to_sync's new loop (and new Redis connection) per call: what a fix of that would give.
   floor:    a raw Redis PUBLISH from the worker → a SUBSCRIBE in this process.

The benchmark builds its own world in a temporary folder: a fresh SQLite database (migrated here), its own
Celery queue and channel-layer prefix on the given Redis (so a running `make run` is not disturbed), a
worker and two uvicorn servers. Nothing of the project's var/ is touched.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on sys.path; the project root is what the imports need.
sys.path[0] = str(ROOT)

ENQUEUE_TARGET_MS = 50.0
WEBSOCKET_TARGET_MS = 100.0
WARMUP = 10


# --------------------------------------------------------------------------------------------------- setup

def prepare_environment(tmp: Path) -> None:
    """Everything Django and the child processes read, set before Django's settings are imported."""
    os.environ["GARAGE_VAR_DIR"] = str(tmp)
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "garage.settings"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["CHANNELS_PREFIX"] = f"garage-bench-{os.getpid()}"
    os.environ["PYTHONUNBUFFERED"] = "1"
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def django_setup(retries: int = 10, wait: float = 30.0) -> None:
    """django.setup(), after checking in a child process that the project imports (URLs included): another
    engineer's half-written app may be missing a module for a few minutes, and a failed setup cannot be retried
    in the same process."""
    check = "import django; django.setup(); import garage.urls, garage.asgi, workers.tasks"
    for attempt in range(retries):
        done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True)
        if done.returncode == 0:
            break
        if attempt == retries - 1:
            raise SystemExit(f"The project does not import:\n{done.stderr[-3000:]}")
        print(f"The project does not import yet ({done.stderr.strip().splitlines()[-1]}); retrying in {wait:.0f}s",
              file=sys.stderr, flush=True)
        time.sleep(wait)
    import django

    django.setup()


# The tests' helpers for real processes: a free port and a bounded wait.
from tests.live import free_port, wait_for  # noqa: E402  (after the sys.path fix above)


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stop one process we started, with its children (it leads its own session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def started(command: list[str], log_path: Path, ready, what: str):
    """Start `command` from the project root with this process's environment; wait until ready(log text)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            def up():
                if process.poll() is not None:
                    raise RuntimeError(f"{what} exited:\n{log_path.read_text()[-3000:]}")
                return ready(log_path.read_text())

            wait_for(up, 90, what=what)
            yield process
        finally:
            stop_process(process)


def worker_command(queue: str, concurrency: int) -> list[str]:
    # As `garage run` starts the default-queue worker, on the benchmark's own queue, with the baseline tasks.
    return [sys.executable, "-m", "celery", "-A", "garage", "worker", "-Q", queue, "-c", str(concurrency),
            "-n", f"bench-{os.getpid()}@%h", "-I", "bench.probes", "--without-mingle", "--without-gossip",
            "--loglevel", "INFO"]


def server_command(app: str, port: int) -> list[str]:
    # The same uvicorn options as `garage run`.
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--ws-ping-interval", "20"]


def port_open(port: int):
    def ready(_log: str) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return ready


# --------------------------------------------------------------------------------------------------- figures

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summary(values_s: list[float]) -> dict:
    ms = [v * 1000.0 for v in values_s]
    return {"n": len(ms), "p50": percentile(ms, 0.50), "p95": percentile(ms, 0.95), "max": max(ms), "min": min(ms),
            "samples_ms": [round(v, 3) for v in ms]}


# --------------------------------------------------------------------------------------------------- 1. enqueue → start

def bench_enqueue(*, user, queue: str, events: int, redis_client) -> dict:
    """Alternate one bare no-op task and one job, waiting for each to finish before the next is sent, so that
    every sample is the latency of an idle system rather than the length of a queue."""
    from django.db import transaction

    from apps.core.models import Job
    from apps.core.services import job_create
    from garage.celery import app

    key = f"bench:{os.getpid()}:noop"
    redis_client.delete(key)
    bare, ours, web_side, worker_side = [], [], [], []

    def one_bare():
        t0 = time.time()
        app.send_task("bench.noop", args=[key], queue=queue)
        popped = redis_client.blpop(key, timeout=30)
        if popped is None:
            raise TimeoutError("The no-op task did not start within 30 s; see worker.log")
        return float(popped[1]) - t0

    def one_job():
        committed = []
        t0 = time.time()
        with transaction.atomic():
            # Registered first, so it runs first on commit, before job_enqueue's send: the end of the web side
            # that cannot be delayed by the worker already running (on 2 cores the worker may claim the row
            # before send_task() has returned here).
            transaction.on_commit(lambda: committed.append(time.time()))
            job = job_create(owner=user, kind=Job.Kind.SLEEP, config={"steps": 0, "seconds": 0}, queue=queue,
                             title="bench enqueue")
        t_committed = committed[0]
        deadline = time.monotonic() + 30
        while True:
            status, started_at = Job.objects.filter(pk=job.pk).values_list("status", "started_at").get()
            if status in Job.FINAL:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"Job {job.code} did not finish within 30 s (status {status}); see worker.log")
            time.sleep(0.005)
        if status != Job.Status.SUCCEEDED or started_at is None:
            raise RuntimeError(f"Job {job.code} ended {status}: {Job.objects.get(pk=job.pk).error}")
        started = started_at.timestamp()
        return started - t0, t_committed - t0, started - t_committed

    for i in range(WARMUP + events):
        # Alternate which goes first, so neither always runs right after the other's cleanup.
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            if which == 0:
                value = one_bare()
                if i >= WARMUP:
                    bare.append(value)
            else:
                total, web, worker = one_job()
                if i >= WARMUP:
                    ours.append(total)
                    web_side.append(web)
                    worker_side.append(worker)
    redis_client.delete(key)
    return {"ours": summary(ours), "web_side": summary(web_side), "worker_side": summary(worker_side),
            "baseline": summary(bare)}


# --------------------------------------------------------------------------------------------------- 2. event → websocket

async def _ws_collect(url: str, origin: str, cookie: str | None, trigger, is_sample, is_done, timeout: float) -> list[float]:
    """Connect, wait for the first message (snapshot or ready), call trigger() in a thread, then collect the
    latency (receive time − message's sent_at) of every sample message until is_done(message)."""
    from websockets.asyncio.client import connect

    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    latencies = []
    async with connect(url, origin=origin, additional_headers=headers, open_timeout=10, max_size=2**22) as ws:
        json.loads(await asyncio.wait_for(ws.recv(), 10))
        await asyncio.to_thread(trigger)
        deadline = time.monotonic() + timeout
        while True:
            raw = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
            received = time.time()
            message = json.loads(raw)
            sent_at = is_sample(message)
            if sent_at is not None:
                latencies.append(received - sent_at)
            if is_done(message, len(latencies)):
                break
    return latencies


def _check_count(latencies: list[float], expected: int, what: str) -> list[float]:
    if len(latencies) != expected:
        raise RuntimeError(f"Expected {expected} {what}, received {len(latencies)}")
    return latencies


def _ours_round(*, user, cookie, queue, server, steps, interval) -> list[float]:
    from django.db import connection

    from apps.core.models import Job
    from apps.core.services import job_create, job_enqueue

    job = job_create(owner=user, kind=Job.Kind.SLEEP, config={"steps": steps, "seconds": interval}, queue=queue,
                     title="bench websocket", start=False)

    def trigger():
        job_enqueue(job)  # Not in a transaction: the task is sent at once.
        connection.close()

    def is_sample(message):
        event = message.get("event") if message.get("type") == "update" else None
        if event and event["type"] == "metric":
            return event["data"]["sent_at"]
        return None

    def is_done(message, _count):
        return message["job"]["status"] in {"succeeded", "failed", "cancelled"}

    url = server.replace("http", "ws", 1) + f"/ws/jobs/{job.code}/"
    latencies = asyncio.run(_ws_collect(url, server, cookie, trigger, is_sample, is_done, timeout=60 + steps * interval * 3))
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        raise RuntimeError(f"The websocket job ended {job.status}: {job.error}")
    return _check_count(latencies, steps, f"metric events of job {job.code} on its websocket")


def _bare_round(*, queue, server, count, interval, kept_loop=False) -> list[float]:
    from garage.celery import app

    group = f"bench-{uuid.uuid4().hex}"

    def trigger():
        app.send_task("bench.group_send", args=[group, count, interval], kwargs={"kept_loop": kept_loop}, queue=queue)

    url = server.replace("http", "ws", 1) + f"/ws/bench/{group}/"
    latencies = asyncio.run(_ws_collect(url, server, None, trigger, lambda m: m.get("sent_at"),
                                        lambda m, n: n >= count, timeout=60 + count * interval * 3))
    return _check_count(latencies, count, "bare group_send messages on the bare websocket")


def _floor_round(*, queue, count, interval) -> list[float]:
    import redis.asyncio as aioredis
    from django.conf import settings

    from garage.celery import app

    channel = f"bench:{os.getpid()}:{uuid.uuid4().hex}"

    async def collect():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        pubsub = client.pubsub()
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=5)  # the subscribe confirmation
        await asyncio.to_thread(app.send_task, "bench.publish", args=[channel, count, interval], queue=queue)
        latencies = []
        deadline = time.monotonic() + 60 + count * interval * 3
        while len(latencies) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Received {len(latencies)} of {count} raw Redis messages")
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            received = time.time()
            latencies.append(received - json.loads(message["data"])["sent_at"])
        await pubsub.unsubscribe(channel)
        await pubsub.aclose()
        await client.aclose()
        return latencies

    return asyncio.run(collect())


def bench_websocket(*, user, cookie, queue, server, bare_server, events, interval, rounds) -> dict:
    """Rounds of (floor, bare, bare on a kept loop, ours), each a share of the events, so that a slow patch of the
    machine hits all of them."""
    ours, bare, kept, floor = [], [], [], []
    # A short warm-up of each path: first connections, first imports in the worker's children.
    _floor_round(queue=queue, count=3, interval=interval)
    _bare_round(queue=queue, server=bare_server, count=3, interval=interval)
    _ours_round(user=user, cookie=cookie, queue=queue, server=server, steps=3, interval=interval)
    for r in range(rounds):
        count = events // rounds + (1 if r < events % rounds else 0)
        floor += _floor_round(queue=queue, count=count, interval=interval)
        bare += _bare_round(queue=queue, server=bare_server, count=count, interval=interval)
        kept += _bare_round(queue=queue, server=bare_server, count=count, interval=interval, kept_loop=True)
        ours += _ours_round(user=user, cookie=cookie, queue=queue, server=server, steps=count, interval=interval)
    return {"ours": summary(ours), "baseline": summary(bare), "kept_loop": summary(kept), "floor": summary(floor)}


# --------------------------------------------------------------------------------------------------- report

def machine_description(redis_client) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlite3

    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "redis": redis_client.info("server").get("redis_version", "?"), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform()}


def render(results: dict, args, machine: dict) -> str:
    rows = []

    def row(label, s, target=None, indent=2):
        result = ("PASS" if s["p95"] < target else "FAIL") if target else ""
        target_text = f"p95 < {target:.0f}" if target else ""
        rows.append(f"{' ' * indent}{label:<54}{s['n']:>5}{s['p50']:>9.1f}{s['p95']:>9.1f}{s['max']:>9.1f}"
                    f"  {target_text:<11}{result}".rstrip())

    def ratio(label, a, b):
        rows.append(f"  {label:<54}{'':>5}{a['p50'] / b['p50']:>8.1f}x{a['p95'] / b['p95']:>8.1f}x")

    header = f"  {'metric':<54}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  {'target':<11}result"
    e, w = results["enqueue"], results["websocket"]
    if e["ours"]["n"]:
        rows.append("enqueue -> task start")
        row("ours: job_create (on-commit send) -> job_claim", e["ours"], ENQUEUE_TARGET_MS)
        row("of which create + commit, web side", e["web_side"], indent=4)
        row("of which send_task -> broker -> claim", e["worker_side"], indent=4)
        row("baseline: bare send_task no-op -> task body", e["baseline"])
        ratio("ratio ours / baseline", e["ours"], e["baseline"])
    if w["ours"]["n"]:
        rows.append("worker event -> websocket client")
        row("ours: JobReporter.metric -> session ws (garage.asgi)", w["ours"], WEBSOCKET_TARGET_MS)
        row("baseline: bare group_send -> bare consumer ws", w["baseline"])
        ratio("ratio ours / baseline", w["ours"], w["baseline"])
        row("variant: bare group_send on a kept event loop", w["kept_loop"])
        row("floor: raw Redis PUBLISH -> SUBSCRIBE", w["floor"])
        ratio("ratio ours / floor", w["ours"], w["floor"])
    title = (f"Gemma Garage latency, {results['date']}: {machine['cores']} cores ({machine['cpu']}), "
             f"Python {machine['python']}, Redis {machine['redis']} at {results['redis_url']}, "
             f"SQLite {machine['sqlite']}; {args.events} events each, worker -c {args.concurrency}, "
             f"event interval {args.interval * 1000:.0f} ms")
    return "\n".join([title, header, *rows])


# --------------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="samples per figure (default 300)")
    parser.add_argument("--interval", type=float, default=0.03,
                        help="seconds between two worker events in the websocket benchmark (default 0.03)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the websocket benchmark (default 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes, as `garage run` (default 2)")
    parser.add_argument("--only", choices=["enqueue", "websocket"], help="run only one of the two benchmarks")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database and logs)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.events < args.rounds:
        parser.error("--events must be at least --rounds")

    tmp = Path(tempfile.mkdtemp(prefix="garage-bench-"))
    prepare_environment(tmp)
    began = time.monotonic()
    try:
        django_setup()
        import redis
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client

        from apps.accounts.models import User

        call_command("migrate", interactive=False, verbosity=0)
        user = User.objects.create_user(email="bench@example.com", password=uuid.uuid4().hex)
        client = Client()
        client.force_login(user)
        cookie = client.cookies["sessionid"].value
        redis_client = redis.Redis.from_url(settings.REDIS_URL)
        queue = f"bench-{os.getpid()}"
        machine = machine_description(redis_client)
        print(f"Setting up in {tmp} (Redis {settings.REDIS_URL}, queue {queue}) ...", flush=True)

        with ExitStack() as stack:
            stack.enter_context(started(worker_command(queue, args.concurrency), tmp / "worker.log",
                                        lambda log: "ready." in log, "the Celery worker"))
            port, bare_port = free_port(), free_port()
            stack.enter_context(started(server_command("garage.asgi:application", port), tmp / "server.log",
                                        port_open(port), "the uvicorn server (garage.asgi)"))
            stack.enter_context(started(server_command("bench.bare_asgi:application", bare_port), tmp / "bare-server.log",
                                        port_open(bare_port), "the uvicorn server (bench.bare_asgi)"))
            print(f"Worker and servers up after {time.monotonic() - began:.1f}s; measuring ...", flush=True)
            empty = {"n": 0, "p50": float("nan"), "p95": float("nan"), "max": float("nan"), "min": float("nan")}
            results = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "redis_url": settings.REDIS_URL,
                       "machine": machine, "events": args.events,
                       "enqueue": {k: empty for k in ("ours", "web_side", "worker_side", "baseline")},
                       "websocket": {k: empty for k in ("ours", "baseline", "kept_loop", "floor")}}
            if args.only in (None, "enqueue"):
                t = time.monotonic()
                results["enqueue"] = bench_enqueue(user=user, queue=queue, events=args.events, redis_client=redis_client)
                print(f"enqueue -> start: {time.monotonic() - t:.1f}s", flush=True)
            if args.only in (None, "websocket"):
                t = time.monotonic()
                results["websocket"] = bench_websocket(
                    user=user, cookie=cookie, queue=queue, server=f"http://127.0.0.1:{port}",
                    bare_server=f"http://127.0.0.1:{bare_port}", events=args.events, interval=args.interval,
                    rounds=args.rounds)
                print(f"event -> websocket: {time.monotonic() - t:.1f}s", flush=True)
        # Kombu keeps a queue's bindings in Redis after the worker stops; this run's queue is never used again.
        redis_client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        results["seconds"] = round(time.monotonic() - began, 1)
        print()
        print(render(results, args, machine))
        print(f"\n(total {results['seconds']}s; warm-up samples excluded; times in milliseconds)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        missed = [name for name, target in (("enqueue", ENQUEUE_TARGET_MS), ("websocket", WEBSOCKET_TARGET_MS))
                  if results[name]["ours"]["n"] and not results[name]["ours"]["p95"] < target]
        return 1 if (args.strict and missed) else 0
    except BaseException:
        print(f"\nLogs and database are kept in {tmp}", file=sys.stderr)
        args.keep = True
        raise
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
