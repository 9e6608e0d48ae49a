"""The worker side of the job system itself: a diagnostic job."""
import logging
import time

from apps.core.jobtypes import job_type
from apps.core.models import Job
from workers.common.errors import Cancelled

logger = logging.getLogger(__name__)


@job_type(Job.Kind.SLEEP)
def sleep_job(job, reporter):
    """A diagnostic job: `steps` steps of `seconds` each, reporting progress and a metric per step.
    Used by the latency benchmarks and by tests of the job system itself, its logs included: it logs what it does."""
    steps, seconds = int(job.config.get("steps", 10)), float(job.config.get("seconds", 0.1))
    logger.info("Sleeping %d steps of %g s", steps, seconds)
    reporter.phase("sleeping", f"{steps} steps")
    for step in range(1, steps + 1):
        if reporter.should_stop():
            raise Cancelled()
        time.sleep(seconds)
        reporter.metric(step=step, loss=1.0 / step, sent_at=time.time())
        reporter.progress(step / steps, f"Step {step} of {steps}")
    return {"steps": steps}
