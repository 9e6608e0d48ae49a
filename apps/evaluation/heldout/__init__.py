"""The held-out evaluation, apart from the benchmarks of the same app: `services` (writes), `selectors` (reads),
`views` (pages), `api` (REST) and `jobs` (the worker side, which alone imports the engine). Its models,
HeldoutEvaluation and HeldoutItem, stay in apps.evaluation.models: one models module per Django app."""
