from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Registers the OpenAPI descriptions of the authentication classes with drf-spectacular.
        from apps.accounts import checks, schema  # noqa: F401
        # (checks registers the system checks of this app.)
