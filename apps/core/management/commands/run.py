"""`garage run`: the whole platform on one machine — Redis found or started, migrations, web and workers."""
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.checks.security.base import (SECRET_KEY_INSECURE_PREFIX, SECRET_KEY_MIN_LENGTH,
                                              SECRET_KEY_MIN_UNIQUE_CHARACTERS)
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from garage.celery import CONTROL_QUEUE
from garage.embedded import ensure_redis
from garage.env import env_str
from garage.logs import PROCESS_NAME_VARIABLE
from workers.common.outbound import LOOPBACK


def _free_port(host: str, preferred: int) -> int:
    for port in range(preferred, preferred + 20):
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) != 0:
                return port
    raise SystemExit(f"No free port between {preferred} and {preferred + 19} on {host}.")


def _default_web_workers() -> int:
    """Web processes of `--production`: one per CPU, at least two (a request stuck in a slow synchronous call leaves
    another process to answer) and at most eight (each holds its own database and Redis connections and some 120 MB;
    the heavy work runs on the Celery workers anyway)."""
    return max(2, min(os.cpu_count() or 1, 8))


def _production_refusals() -> list[str]:
    """What keeps these settings from serving in production, each saying how to fix it."""
    refusals = []
    if settings.DEBUG:
        refusals.append("DEBUG is on, and its error pages show settings and code to anyone: unset DEBUG.")
    key = env_str("SECRET_KEY")
    if not key:
        refusals.append("SECRET_KEY is not set. The key generated into var/secret_key suits one development machine; "
                        "the web and every worker must share one key that outlives var/. Set SECRET_KEY to a long "
                        "random value, such as the output of "
                        "python -c \"import secrets; print(secrets.token_urlsafe(50))\"")
    elif (len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
          or key.startswith(SECRET_KEY_INSECURE_PREFIX)):
        refusals.append(f"SECRET_KEY is too easy to guess: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
                        f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different, and must not start with "
                        f"{SECRET_KEY_INSECURE_PREFIX!r}.")
    return refusals


class Command(BaseCommand):
    help = ("Run the web server and the Celery workers: one for queue 'default', one for queue 'gpu', one for queue "
            "'inference' and one for queue 'control' (the reaper and its schedule).")

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("GARAGE_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("GARAGE_PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="Start only the web server.")
        parser.add_argument("--production", action="store_true", default=settings.GARAGE_PRODUCTION,
                            help="Serve for real (also when GARAGE_PRODUCTION is on): refuse DEBUG and a missing "
                                 "SECRET_KEY, run `check --deploy`, collect hashed and compressed static files, and "
                                 "serve with several web processes, believing proxy headers only with BEHIND_PROXY.")
        parser.add_argument("--workers", type=int, default=None,
                            help="Web processes (uvicorn workers); by default 1, or with --production one per CPU "
                                 "between 2 and 8.")

    def handle(self, *args, host, port, no_worker, production, workers, **options):
        if workers is not None and workers < 1:
            raise CommandError(f"--workers {workers}: the web needs at least one process.")
        refusals = _production_refusals() if production else []
        if refusals:
            raise CommandError("Not serving in production:\n- " + "\n- ".join(refusals))
        env = dict(os.environ, REDIS_URL=ensure_redis(), DJANGO_SETTINGS_MODULE="garage.settings")
        if production:
            # Children read it: the storage of hashed, compressed static files (garage/settings.py).
            env["GARAGE_PRODUCTION"] = "1"
        else:
            # One person's machine runs its own Ollama or vLLM on loopback: allow that unless the variable says
            # otherwise. Never on a shared server, where loopback would let any user reach its private services.
            env.setdefault("GARAGE_ALLOWED_ENDPOINTS", ",".join(LOOPBACK))
        # A line per request is noise on one person's machine; LOG_ACCESS=on brings it back (settings.LOGGING).
        env.setdefault("LOG_ACCESS", "off")
        os.environ["REDIS_URL"] = env["REDIS_URL"]
        call_command("migrate", interactive=False, verbosity=0)
        python = sys.executable
        web_workers = workers or (_default_web_workers() if production else 1)
        web = [python, "-m", "uvicorn", "garage.asgi:application", "--host", host, "--ws-ping-interval", "20",
               "--workers", str(web_workers)]
        if production:
            call_command("check", deploy=True)  # warnings are printed; an error stops here
            self._collect_static(env)
            # A proxy is told one port: a busy one is an error, not a reason to move to the next.
            if _free_port(host, port) != port:
                raise CommandError(f"Port {port} on {host} is taken: stop what listens there or pass --port.")
            # The client's address and scheme come from the proxy's headers, and from no one else's.
            web += (["--proxy-headers", "--forwarded-allow-ips", settings.FORWARDED_ALLOW_IPS] if settings.BEHIND_PROXY
                    else ["--no-proxy-headers"])
            # A request or websocket that does not end on a stop cannot hold it past the children's 20 s.
            web += ["--timeout-graceful-shutdown", "15"]
        else:
            port = _free_port(host, port)
        commands = {"web": [*web, "--port", str(port)]}
        if not no_worker:
            commands["worker-default"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", "default", "-c", "2",
                                          "-n", "default@%h"]
            # The reaper (and the dispatch of waiting GPU jobs) with the schedule that sends it: a worker of its own, so
            # that hours-long pushes on `default` cannot stop it. One process (solo pool): its tasks are short.
            beat_schedule = str(settings.VAR_DIR / "celerybeat-schedule")
            commands["worker-control"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", CONTROL_QUEUE,
                                          "-P", "solo", "-n", "control@%h", "-B", "-s", beat_schedule]
            # One training at a time per GPU (or per CPU machine).
            commands["worker-gpu"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", "gpu", "-c", "1",
                                      "-n", "gpu@%h"]
            # Playground and /v1/chat/completions answers: their own worker, so that a training holding `gpu` for
            # hours does not keep them waiting. One request at a time; the process keeps recent models loaded.
            commands["worker-inference"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", settings.GARAGE_INFERENCE_QUEUE,
                                            "-c", "1", "-n", "inference@%h"]
        # Each child's log lines say which child wrote them (garage.logs); their level is LOG_LEVEL's.
        children = {name: subprocess.Popen(cmd, env=dict(env, **{PROCESS_NAME_VARIABLE: name}), cwd=settings.BASE_DIR)
                    for name, cmd in commands.items()}
        mode = f" (production, {web_workers} web processes)" if production else ""
        self.stdout.write(self.style.SUCCESS(f"\nGemma Garage is running{mode}: http://{host}:{port}/\n"))
        self.stdout.write(f"Redis: {env['REDIS_URL']}   database: {settings.DATABASES['default']['NAME']}\n"
                          "Create an admin account with `garage createsuperuser`. Press Ctrl-C to stop.\n")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with status {child.returncode}; stopping everything.")
                        stopping = True
                time.sleep(0.5)
        finally:
            self._stop(children)

    def _collect_static(self, env):
        """Hashed and compressed copies of the static files into STATIC_ROOT. In a process of its own, which reads
        GARAGE_PRODUCTION from `env`: this one may have read its settings without it."""
        collected = subprocess.run([sys.executable, "-m", "garage.cli", "collectstatic", "--noinput", "--verbosity", "0"],
                                   env=env, cwd=settings.BASE_DIR)
        if collected.returncode != 0:
            raise CommandError("collectstatic failed (its message is above); nothing was started.")

    def _stop(self, children):
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("Stopped.")
