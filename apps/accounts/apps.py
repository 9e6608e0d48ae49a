from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Registers the OpenAPI descriptions of the authentication classes with drf-spectacular.
        from apps.accounts import schema  # noqa: F401
