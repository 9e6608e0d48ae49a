from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "apps.hub"
    label = "hub"
    verbose_name = "Hugging Face Hub"

    def ready(self):
        from apps.hub.publish import hub_session_guard
        from apps.providers.client import allowed_endpoints

        # Hub addresses are checked like every other address this server is asked to contact.
        hub_session_guard(allowed=allowed_endpoints)
