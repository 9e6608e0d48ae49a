from django.apps import AppConfig


class RlConfig(AppConfig):
    name = "apps.rl"
    label = "rl"
    verbose_name = "Reinforcement learning (GRPO)"

    def ready(self):
        # Declares what this app's jobs belong to (apps.core.subjects), for the job pages and Cancel questions.
        from apps.rl import subjects  # noqa: F401
