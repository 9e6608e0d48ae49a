from django.contrib import admin

from apps.providers.models import ExternalCallAudit, PiiPattern, ProviderCredential


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    """Saved endpoints can be inspected and deleted here. The key is never shown, not even encrypted, and
    only its owner can set it (from their Providers page or the API). The base URL is read-only too: the saved key
    is sent to it, and changing where it goes needs the key again (provider_credential_update), which only the
    owner has."""

    list_display = ("name", "owner", "base_url", "model", "key_display", "created_at", "updated_at")
    list_filter = ("created_at",)
    search_fields = ("name", "base_url", "model", "owner__email")
    list_select_related = ("owner",)
    fields = ("code", "owner", "name", "base_url", "model", "key_display", "created_at", "updated_at")
    readonly_fields = ("code", "owner", "base_url", "key_display", "created_at", "updated_at")
    ordering = ("-created_at",)

    @admin.display(description="API key")
    def key_display(self, obj):
        return obj.key_display

    def has_add_permission(self, request):
        return False


@admin.register(PiiPattern)
class PiiPatternAdmin(admin.ModelAdmin):
    list_display = ("label", "pattern", "owner", "created_at")
    search_fields = ("label", "pattern", "owner__email")
    list_select_related = ("owner",)
    readonly_fields = ("code", "created_at")


@admin.register(ExternalCallAudit)
class ExternalCallAuditAdmin(admin.ModelAdmin):
    """The audit log is read-only: entries are written by the workers and never edited."""

    list_display = ("created_at", "owner", "purpose", "provider", "endpoint", "model", "characters_sent", "attempts",
                    "ok", "status_code", "pii_replacements")
    list_filter = ("purpose", "ok", "created_at")
    search_fields = ("owner__email", "provider", "endpoint", "model")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
