from django.contrib import admin

from apps.hub.models import HubConnection, HubPreferences


@admin.register(HubConnection)
class HubConnectionAdmin(admin.ModelAdmin):
    """Connections can be inspected and deleted (which disconnects the user). Tokens are never shown, not even
    encrypted: at most the last four characters of a pasted one."""

    list_display = ("username", "owner", "method", "endpoint", "token_display", "expires_at", "needs_reconnect", "updated_at")
    list_filter = ("method", "needs_reconnect")
    search_fields = ("username", "owner__email", "endpoint")
    list_select_related = ("owner",)
    fields = ("code", "owner", "method", "endpoint", "username", "token_display", "scope", "expires_at",
              "needs_reconnect", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="Token")
    def token_display(self, obj):
        return obj.token_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(HubPreferences)
class HubPreferencesAdmin(admin.ModelAdmin):
    list_display = ("owner", "auto_push", "repo_pattern", "auto_private", "gate_threshold", "block_worse", "updated_at")
    list_filter = ("auto_push", "block_worse")
    search_fields = ("owner__email",)
    list_select_related = ("owner",)
    readonly_fields = ("code", "owner", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False
