"""Celery tasks: the one task that runs any job by its kind (each app's `jobs.py` declares its kinds: how a job runs on
the worker and what follows it, apps.core.jobtypes), the playground's answers, and the reaper."""
from apps.core.broker import RUN_TASK
from apps.core.jobtypes import job_types_load
from apps.core.services import jobs_reap
from garage.celery import app
from workers.jobs import job_run

# Every app's worker side declares its job types as it is imported.
job_types_load()


@app.task(name=RUN_TASK, bind=True, acks_late=True)
def run_job(self, job_id: int):
    """Run one job by its kind (queue: the job's own; time limit: the kind's, sent with the message). Side effects:
    those of the kind's job type."""
    job_run(job_id=job_id, task_id=self.request.id or "", worker=self.request.hostname or "")


# Queue `inference` (settings.GARAGE_INFERENCE_QUEUE), apart from `gpu`: a training holds a gpu worker for hours,
# and chat answers must not wait behind it. Not a job: nothing is stored, and a lost request is not redelivered
# (acks_late off) because its reader has given up by then.
@app.task(name="playground.generate", ignore_result=True, acks_late=False, soft_time_limit=900)
def inference_generate(**request):
    """Answer one playground or /v1/chat/completions request, streaming pieces to its reply channel.
    Side effects: see apps.playground.jobs.inference_run."""
    from apps.playground.jobs import inference_run

    inference_run(**request)


@app.task(name="core.reap_jobs", ignore_result=True)
def reap_jobs():
    """Fail or resume jobs whose worker died, send again the messages the broker lost, and dispatch waiting GPU jobs.
    Routed to queue `control` (garage.celery), whose worker runs nothing long."""
    from apps.core.scheduling import gpu_dispatch

    reaped = jobs_reap()
    gpu_dispatch()  # also a safety net: GPU jobs left waiting by a lost message or a crash get their turn
    return reaped
