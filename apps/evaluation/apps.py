from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "apps.evaluation"
    label = "evaluation"
    verbose_name = "Evaluation and benchmarks"

    def ready(self):
        from apps.evaluation import receivers  # noqa: F401  (connects the held-out evaluation to job_finished)
