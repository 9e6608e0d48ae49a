import hashlib
import secrets

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

from apps.core.models import OwnedModel


class EmailUserManager(UserManager):
    """Users sign in with their email; the username mirrors it so Django's auth machinery stays unchanged."""

    def _create_user(self, username, email, password, **extra_fields):
        email = self.normalize_email(email or username)
        return super()._create_user(email, email, password, **extra_fields)

    def create_user(self, email=None, password=None, **extra_fields):
        return super().create_user(extra_fields.pop("username", email), email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, **extra_fields):
        return super().create_superuser(extra_fields.pop("username", email), email, password, **extra_fields)


class User(AbstractUser):
    email = models.EmailField("email address", unique=True)
    firebase_uid = models.CharField(max_length=128, unique=True, null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = EmailUserManager()

    def save(self, *args, **kwargs):
        self.email = (self.email or "").strip().lower()
        self.username = self.email
        super().save(*args, **kwargs)


# Every personal API token starts with this, so the API can tell one apart from a Firebase ID token
# (a JWT) at a glance, and secret scanners can recognise a leaked one.
API_TOKEN_PREFIX = "gg_"
# How many leading characters of a token the pages show, so that people can tell their tokens apart.
API_TOKEN_VISIBLE_CHARS = 11


def api_token_secret_new() -> str:
    """A fresh token: the prefix and 256 random bits, URL-safe so it fits in a header as is."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def api_token_hash(secret: str) -> str:
    """The SHA-256 hex digest stored in place of the token. The token is random enough that no salt is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(OwnedModel):
    """A personal API token. Only its hash and first few characters are stored, never the token itself."""

    name = models.CharField(max_length=100, help_text="What the token is for, such as “laptop script”.")
    prefix = models.CharField(max_length=20, help_text="The first characters of the token, shown to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the token.")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
