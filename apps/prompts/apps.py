from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "apps.prompts"
    label = "prompts"
    verbose_name = "Prompt optimization"

    def ready(self):
        # Declares what this app's jobs belong to (apps.core.subjects), for the job pages and Cancel questions.
        from apps.prompts import subjects  # noqa: F401
