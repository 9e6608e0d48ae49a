from django.contrib import admin
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from apps.accounts.models import ApiToken, User


class UserCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin, with the email as the login (the username only mirrors it)."""

    form = UserChangeForm
    add_form = UserCreationForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Firebase", {"fields": ("firebase_uid",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),
    )
    list_display = ("email", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "date_joined", "last_login")
    search_fields = ("email", "first_name", "last_name", "firebase_uid")
    ordering = ("-date_joined",)
    readonly_fields = ("last_login", "date_joined")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens can be inspected and revoked (deleted) here; they are created only by their owners, who
    alone may see the secret."""

    list_display = ("name", "owner", "prefix", "created_at", "last_used_at")
    list_filter = ("created_at", "last_used_at")
    search_fields = ("name", "prefix", "owner__email")
    list_select_related = ("owner",)
    # The hash is left out altogether: nobody needs to read it, and editing it would break the token.
    fields = ("code", "owner", "name", "prefix", "created_at", "last_used_at")
    readonly_fields = ("code", "owner", "prefix", "created_at", "last_used_at")
    ordering = ("-created_at",)

    def has_add_permission(self, request):
        return False
