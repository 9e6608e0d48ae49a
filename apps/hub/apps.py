from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "apps.hub"
    label = "hub"
    verbose_name = "Hugging Face Hub"

    def ready(self):
        from apps.hub import receivers  # noqa: F401  (connects the automatic push to job_finished)
