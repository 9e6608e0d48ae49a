"""`garage run`: the whole platform on one machine — Redis found or started, migrations, web and workers."""
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from garage.celery import CONTROL_QUEUE
from garage.embedded import ensure_redis
from workers.common.outbound import LOOPBACK


def _free_port(host: str, preferred: int) -> int:
    for port in range(preferred, preferred + 20):
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) != 0:
                return port
    raise SystemExit(f"No free port between {preferred} and {preferred + 19} on {host}.")


class Command(BaseCommand):
    help = ("Run the web server and the Celery workers: one for queue 'default', one for queue 'gpu', one for queue "
            "'inference' and one for queue 'control' (the reaper and its schedule).")

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("GARAGE_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("GARAGE_PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="Start only the web server.")

    def handle(self, *args, host, port, no_worker, **options):
        env = dict(os.environ, REDIS_URL=ensure_redis(), DJANGO_SETTINGS_MODULE="garage.settings")
        # One person's machine runs its own Ollama or vLLM on loopback: allow that unless the variable says otherwise.
        env.setdefault("GARAGE_ALLOWED_ENDPOINTS", ",".join(LOOPBACK))
        os.environ["REDIS_URL"] = env["REDIS_URL"]
        call_command("migrate", interactive=False, verbosity=0)
        port = _free_port(host, port)
        python = sys.executable
        commands = {"web": [python, "-m", "uvicorn", "garage.asgi:application", "--host", host, "--port", str(port),
                            "--no-access-log", "--ws-ping-interval", "20"]}
        if not no_worker:
            commands["worker-default"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", "default", "-c", "2",
                                          "-n", "default@%h", "--loglevel", "INFO"]
            # The reaper (and the dispatch of waiting GPU jobs) with the schedule that sends it: a worker of its own, so
            # that hours-long pushes on `default` cannot stop it. One process (solo pool): its tasks are short.
            beat_schedule = str(settings.VAR_DIR / "celerybeat-schedule")
            commands["worker-control"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", CONTROL_QUEUE,
                                          "-P", "solo", "-n", "control@%h", "-B", "-s", beat_schedule, "--loglevel", "INFO"]
            # One training at a time per GPU (or per CPU machine).
            commands["worker-gpu"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", "gpu", "-c", "1",
                                      "-n", "gpu@%h", "--loglevel", "INFO"]
            # Playground and /v1/chat/completions answers: their own worker, so that a training holding `gpu` for
            # hours does not keep them waiting. One request at a time; the process keeps recent models loaded.
            commands["worker-inference"] = [python, "-m", "celery", "-A", "garage", "worker", "-Q", settings.GARAGE_INFERENCE_QUEUE,
                                            "-c", "1", "-n", "inference@%h", "--loglevel", "INFO"]
        children = {name: subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(f"\nGemma Garage is running: http://{host}:{port}/\n"))
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
