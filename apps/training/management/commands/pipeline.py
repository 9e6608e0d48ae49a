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


LOCAL_USER_EMAIL = "local@localhost"


class Command(BaseCommand):
    help = "Extract, generate question-answer pairs, fine-tune and evaluate, then print the results."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="Documents: PDF, DOCX, PPTX, TXT, MD, HTML, CSV, JSON or JSONL")
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of a summary.")
        parser.add_argument("--name", default="", help="Dataset name (default: the first file's name).")
        parser.add_argument("--base-model", default=None,
                            help="A catalogue id, Hub id or model folder (default: the best real model installed).")
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
            **{k: job.result.get(k) for k in ("base_model", "train_steps", "loss_first", "loss_last", "em_before",
                                              "em_after", "recall_before", "recall_after", "unseen_before",
                                              "unseen_after", "control_before", "control_after", "tokens_per_s")},
            "seconds": round(time.monotonic() - started, 2),
            "artifact": str(finetune_artifact_path(finetune)),
            "job": str(job.code),
        }
        if as_json:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(self._summary(result))

    @staticmethod
    def _summary(result: dict) -> str:
        def change(name: str) -> str:
            before, after = result[f"{name}_before"], result[f"{name}_after"]
            return "not measured" if before is None else f"{before:.2f} → {after:.2f}"

        return (f"{result['documents']} document(s), {result['qa_pairs']} pairs, {result['train_steps']} steps of "
                f"{result['base_model']} in {result['seconds']:.0f} s\n"
                f"Recall (new phrasings of trained facts, token F1): {change('recall')}\n"
                f"Unseen facts (never trained on):                   {change('unseen')}\n"
                f"Control (general questions; a drop is forgetting):  {change('control')}\n"
                f"Exact match on training questions:                 {change('em')}\n{result['artifact']}")

    def _fail(self, as_json: bool, message: str):
        if as_json:
            self.stdout.write(json.dumps({"ok": False, "error": message}))
        else:
            self.stderr.write(message)
        sys.exit(2)
