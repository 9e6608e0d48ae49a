from django.db import models

from apps.core.models import Job, OwnedModel

# The key's tail shown to tell credentials apart; keys shorter than this many characters show nothing,
# because four characters of a short key are too large a share of it.
KEY_HINT_CHARS = 4
KEY_HINT_MIN_LENGTH = 12


class ProviderCredential(OwnedModel):
    """A user's OpenAI-compatible chat endpoint: base URL, model and API key (stored encrypted, never shown)."""

    name = models.CharField(max_length=100, help_text="A name to recognise it by, such as “vLLM on the lab box”.")
    base_url = models.CharField(max_length=500, help_text="The API's base URL, usually ending in /v1.")
    model = models.CharField(max_length=200, help_text="The model name the endpoint expects.")
    api_key_encrypted = models.TextField(blank=True, editable=False, help_text="Fernet token of the API key.")
    api_key_hint = models.CharField(max_length=KEY_HINT_CHARS, blank=True, editable=False,
                                    help_text="The key's last characters, to tell keys apart.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_provider_name_per_owner")]

    def __str__(self):
        return f"{self.name} ({self.model})"

    @property
    def has_key(self) -> bool:
        return bool(self.api_key_encrypted)

    @property
    def key_display(self) -> str:
        """What pages show of the key: its last characters, or whether there is one at all."""
        if not self.api_key_encrypted:
            return "no key"
        return f"…{self.api_key_hint}" if self.api_key_hint else "set"


class PiiPattern(OwnedModel):
    """A user's own pattern for PII scrubbing: matches become [LABEL] before text leaves the machine."""

    label = models.CharField(max_length=30, help_text="Placeholder name, such as EMPLOYEE_ID.")
    pattern = models.CharField(max_length=500, help_text="A regular expression.")

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "PII pattern"

    def __str__(self):
        return f"[{self.label}] {self.pattern}"


class ExternalCallAudit(OwnedModel):
    """One request that sent text off this machine: who, to which endpoint and model, what for, how much, when."""

    class Purpose(models.TextChoices):
        GENERATE = "generate", "Generate QA pairs"
        JUDGE = "judge", "Judge QA pairs"
        TEST = "test", "Test connection"
        OTHER = "other", "Other"

    credential = models.ForeignKey(ProviderCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.CharField(max_length=100, help_text="The credential's name, or “site default”.")
    endpoint = models.CharField(max_length=500, help_text="The base URL the text went to.")
    model = models.CharField(max_length=200, blank=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.OTHER)
    characters_sent = models.PositiveIntegerField(default=0, help_text="Characters of message content per attempt.")
    attempts = models.PositiveIntegerField(default=1, help_text="How many times the request was sent (retries included).")
    ok = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True, help_text="The last HTTP status; empty when no answer came.")
    error = models.CharField(max_length=300, blank=True)
    pii_replacements = models.PositiveIntegerField(default=0, help_text="Personal data replaced by placeholders before sending.")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "external call"
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self):
        return f"{self.get_purpose_display()} → {self.endpoint} ({self.characters_sent} chars)"
