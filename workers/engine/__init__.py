"""The engine: extraction, data preparation, training, evaluation, reinforcement learning, inference and export.

Each stage takes a plain config dataclass and a reporter (workers.engine.reporting) and never imports Django or the
apps; only the apps' `jobs.py` modules (the worker side) call it (import-linter contracts in pyproject.toml)."""
