from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "apps.evaluation"
    label = "evaluation"
    verbose_name = "Evaluation and benchmarks"

    def ready(self):
        # Declares what this app's jobs belong to (apps.core.subjects), for the job pages and Cancel questions.
        from apps.evaluation import subjects  # noqa: F401
