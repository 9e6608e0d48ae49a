"""`garage pipeline FILE... --json`: documents to a fine-tuned, evaluated model without the web server.

Runs the same services and tasks as the dashboard, in this process, for a local user."""
import json
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management import call_command
from django.core.management.base import BaseCommand

from workers.tiny_model import TINY_MODEL_ID

LOCAL_USER_EMAIL = "local@localhost"


class Command(BaseCommand):
    help = "Extract, generate question-answer pairs, fine-tune and evaluate, then print the results."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="Documents: PDF, DOCX, PPTX, TXT, MD, HTML, CSV, JSON or JSONL")
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of a summary.")
        parser.add_argument("--name", default="", help="Dataset name (default: the first file's name).")
        parser.add_argument("--base-model", default=TINY_MODEL_ID)
        parser.add_argument("--method", default="lora", choices=["lora", "full"])
        parser.add_argument("--steps", type=int, default=None, help="Training steps.")

    def handle(self, *args, files, name, base_model, method, steps, **options):
        as_json = options["json"]
        started = time.monotonic()
        # Everything runs here: tasks execute in-process and live updates stay in memory.
        from garage.celery import app

        app.conf.task_always_eager = True
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        call_command("migrate", interactive=False, verbosity=0)

        from apps.accounts.models import User
        from apps.core.models import Job
        from apps.training.models import FineTune
        from apps.training.pipeline import pipeline_start
        from apps.training.services import finetune_artifact_path

        paths = [Path(f) for f in files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            return self._fail(as_json, f"No such file: {', '.join(missing)}")
        user, _ = User.objects.get_or_create(email=LOCAL_USER_EMAIL, defaults={"username": LOCAL_USER_EMAIL})
        handles = [p.open("rb") for p in paths]
        try:
            job = pipeline_start(owner=user, files=[File(h, name=p.name) for h, p in zip(handles, paths)],
                                 name=name or paths[0].stem, base_model=base_model, method=method,
                                 options={"max_steps": steps} if steps else {})
        except ValidationError as exc:
            return self._fail(as_json, " ".join(exc.messages))
        finally:
            for handle in handles:
                handle.close()
        job.refresh_from_db()
        if job.status != Job.Status.SUCCEEDED:
            return self._fail(as_json, job.error_message or f"The pipeline ended as {job.status}.")
        finetune = FineTune.objects.get(code=job.result["finetune"])
        result = {
            "documents": job.result["documents"],
            "qa_pairs": job.result["qa_pairs"],
            **{k: job.result.get(k) for k in ("train_steps", "loss_first", "loss_last", "em_before", "em_after", "tokens_per_s")},
            "seconds": round(time.monotonic() - started, 2),
            "artifact": str(finetune_artifact_path(finetune)),
            "job": str(job.code),
        }
        if as_json:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(
                f"{result['documents']} document(s), {result['qa_pairs']} pairs, {result['train_steps']} steps: "
                f"loss {result['loss_first']:.3f} → {result['loss_last']:.3f}, exact match "
                f"{result['em_before']:.3f} → {result['em_after']:.3f} in {result['seconds']:.0f} s\n{result['artifact']}"
            )

    def _fail(self, as_json: bool, message: str):
        if as_json:
            self.stdout.write(json.dumps({"ok": False, "error": message}))
        else:
            self.stderr.write(message)
        sys.exit(2)
