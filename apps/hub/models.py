from django.db import models

from apps.core.models import OwnedModel

# Pages show at most this many of a token's last characters, and none of a token shorter than the minimum.
TOKEN_HINT_CHARS = 4
TOKEN_HINT_MIN_LENGTH = 12


class HubConnection(OwnedModel):
    """A user's Hugging Face account: who they are there, and the tokens that let this server publish for them.

    Tokens are stored encrypted (apps.core.crypto) and decrypted only right before a request to the Hub. The
    endpoint is recorded at connection time because a token is only good on the Hub that issued it."""

    class Method(models.TextChoices):
        OAUTH = "oauth", "Signed in with Hugging Face"
        TOKEN = "token", "Access token"

    method = models.CharField(max_length=10, choices=Method.choices)
    endpoint = models.CharField(max_length=300, help_text="The Hub this account lives on.")
    username = models.CharField(max_length=100)
    access_token_encrypted = models.TextField(blank=True, editable=False)
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="When the access token expires (OAuth only).")
    scope = models.CharField(max_length=300, blank=True)
    token_hint = models.CharField(max_length=TOKEN_HINT_CHARS, blank=True, editable=False,
                                  help_text="The pasted token's last characters, to tell tokens apart.")
    needs_reconnect = models.BooleanField(default=False, help_text="The sign-in expired and could not be renewed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner"], name="one_hub_connection_per_user")]

    def __str__(self):
        return f"{self.username} on {self.endpoint}"

    @property
    def token_display(self) -> str:
        """What pages show of the token: never more than its last four characters."""
        if not self.access_token_encrypted:
            return "none"
        if self.method == self.Method.OAUTH:
            return "OAuth token"
        return f"…{self.token_hint}" if self.token_hint else "set"

    @property
    def is_usable(self) -> bool:
        return bool(self.access_token_encrypted) and not self.needs_reconnect


class HubPreferences(OwnedModel):
    """A user's publishing settings: the automatic push after training and the evaluation gate."""

    auto_push = models.BooleanField(default=False, help_text="Push every model whose training succeeds.")
    repo_pattern = models.CharField(
        max_length=120, default="{name}",
        help_text="Name of the repository an automatic push goes to. {name} is the model's name, {date} the day it "
                  "finished, {id} the first characters of its id.")
    auto_private = models.BooleanField(default=True, help_text="Make automatically pushed repositories private.")
    gate_threshold = models.FloatField(
        default=0.0, help_text="How much worse than its base (in the evaluation's metric) a model may be before "
                               "publishing it asks for confirmation.")
    block_worse = models.BooleanField(default=False, help_text="Refuse to publish models worse than their base.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "hub preferences"
        constraints = [models.UniqueConstraint(fields=["owner"], name="one_hub_preferences_per_user")]

    def __str__(self):
        return f"Hub preferences of {self.owner}"
