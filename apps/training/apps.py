from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Fine-tuning"

    def ready(self):
        # Declares what this app's jobs belong to (apps.core.subjects), for the job pages and Cancel questions.
        from apps.training import subjects  # noqa: F401
