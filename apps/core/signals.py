from django.dispatch import Signal

# Sent after a job reached a final status, with `job`. The pipeline listens to move on to its next step.
job_finished = Signal()
