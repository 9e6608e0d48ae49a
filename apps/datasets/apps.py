from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        # Declares what this app's jobs belong to (apps.core.subjects), for the job pages and Cancel questions.
        from apps.datasets import subjects  # noqa: F401
