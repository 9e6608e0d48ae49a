"""The reporter protocol engines use to tell the world what they are doing, and a recording one for tests/CLI."""
from __future__ import annotations

import time
from typing import Protocol


class Reporter(Protocol):
    def phase(self, name: str, message: str = "") -> None: ...

    def progress(self, fraction: float, message: str = "") -> None: ...

    def log(self, line: str) -> None: ...

    def metric(self, **values: float) -> None: ...

    # `folder`: the checkpoint just saved, whole (a resumable state that can be copied elsewhere).
    def checkpoint(self, step: int, folder: str) -> None: ...

    def should_stop(self) -> bool: ...


class RecordingReporter:
    """Keeps everything in lists; optionally prints log lines. Used by tests and the headless CLI."""

    def __init__(self, echo=None, stop_after_metrics: int | None = None):
        self.phases: list[str] = []
        self.progress_values: list[float] = []
        self.lines: list[str] = []
        self.metrics: list[dict] = []
        self.checkpoints: list[int] = []
        self.echo = echo
        self.stop_after_metrics = stop_after_metrics
        self.started = time.monotonic()

    def phase(self, name, message=""):
        self.phases.append(name)
        if self.echo:
            self.echo(f"[{name}] {message}".rstrip())

    def progress(self, fraction, message=""):
        self.progress_values.append(fraction)

    def log(self, line):
        self.lines.append(line)
        if self.echo:
            self.echo(line)

    def metric(self, **values):
        self.metrics.append(values)

    def checkpoint(self, step, folder):
        self.checkpoints.append(step)

    def should_stop(self):
        return self.stop_after_metrics is not None and len(self.metrics) >= self.stop_after_metrics
