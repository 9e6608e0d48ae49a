"""Plain Python that both sides of the worker boundary read: the model catalogue and the training planner, the
engine's option limits and config dataclasses, record formats, PII patterns, readable errors, and the one client
(with its outbound guard) for external models. No Django, no torch, no numpy: the web process imports it to check a
request and describe a plan before any job exists (import-linter contracts in pyproject.toml keep it so)."""
