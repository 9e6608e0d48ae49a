"""The question-answer generators a run may choose (workers.engine.data.generate has them): their names, which the
web process checks a request against before any job exists."""

BACKENDS = ("extractive", "endpoint", "local_model")
