from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Fine-tuning"

    def ready(self):
        from apps.training import pipeline  # noqa: F401  (connects the pipeline to job_finished)
