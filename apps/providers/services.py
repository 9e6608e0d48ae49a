"""Writes of the providers app: saved endpoints with encrypted keys, PII patterns, and the check of a provider
choice when a job is started (provider_choice_validate). Calls to the endpoints, with their guard, scrubbing, retries
and audit rows, are apps.providers.client's."""
from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from apps.core.crypto import DecryptionError, encrypt, encryption_rotate
from apps.providers.client import SITE_DEFAULT, allowed_endpoints, provider_client
from apps.providers.models import (
    KEY_HINT_CHARS,
    KEY_HINT_MIN_LENGTH,
    ExternalCallAudit,
    PiiPattern,
    ProviderCredential,
)
from apps.providers.selectors import (
    provider_credential_get_for_user,
    site_default_endpoint,
)
from workers.common.errors import ReadableError
from workers.common.llm import normalise_base_url
from workers.common.outbound import check_url
from workers.common.pii import clean_label, compile_user_pattern

logger = logging.getLogger(__name__)

# A connection test answers the person waiting on the page: one short try, no retries.
TEST_TIMEOUT = 15.0
KEY_AGAIN_MESSAGE = "Enter the API key again: the key is only sent to the endpoint it was saved for."


def clean_base_url(base_url: str) -> str:
    """The base URL, or ValidationError. User names and passwords inside URLs are refused: pages show the URL."""
    url = normalise_base_url(base_url)
    if not url:
        raise ValidationError("Give the endpoint's base URL, such as http://127.0.0.1:8000/v1.")
    if len(url) > 500 or re.search(r"\s", url):
        raise ValidationError("The base URL is too long or contains spaces.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("The base URL must start with http:// or https:// and name a host, "
                              "such as http://127.0.0.1:8000/v1.")
    if parts.username or parts.password:
        raise ValidationError("Put the API key in the key field, not inside the URL.")
    if parts.query or parts.fragment:
        raise ValidationError("The base URL must not have a query string or fragment.")
    try:
        parts.port
    except ValueError:
        raise ValidationError("The base URL's port must be a number between 0 and 65535.")
    try:
        check_url(url, allowed=allowed_endpoints)
    except ReadableError as exc:  # a forbidden address, or a malformed allow-list
        raise ValidationError(str(exc))
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    """Where requests to a URL go: scheme, host and port (the default port spelled out)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").rstrip(".").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def _key_fields(api_key: str) -> dict:
    api_key = (api_key or "").strip()
    if not api_key:
        return {"api_key_encrypted": "", "api_key_hint": ""}
    if len(api_key) > 4096 or re.search(r"\s", api_key):
        raise ValidationError("The API key is too long or contains spaces.")
    hint = api_key[-KEY_HINT_CHARS:] if len(api_key) >= KEY_HINT_MIN_LENGTH else ""
    return {"api_key_encrypted": encrypt(api_key), "api_key_hint": hint}


def provider_credential_create(*, owner, name: str, base_url: str, model: str, api_key: str = "") -> ProviderCredential:
    """Save an endpoint for the user. Side effect: one ProviderCredential row, its key encrypted.

    Raises ValidationError with a readable message for a missing name or model, a bad URL, or a name in use."""
    name, model = (name or "").strip(), (model or "").strip()
    if not name:
        raise ValidationError("Give the provider a name, such as “vLLM on the lab box”.")
    if not model:
        raise ValidationError("Give the model name the endpoint expects, such as “google/gemma-3-4b-it”.")
    if ProviderCredential.objects.filter(owner=owner, name__iexact=name).exists():
        raise ValidationError(f"You already have a provider named “{name}”.")
    return ProviderCredential.objects.create(owner=owner, name=name[:100], base_url=clean_base_url(base_url),
                                             model=model[:200], **_key_fields(api_key))


def provider_credential_update(*, credential: ProviderCredential, name: str | None = None, base_url: str | None = None,
                               model: str | None = None, api_key: str | None = None) -> ProviderCredential:
    """Change some fields of a saved endpoint; an api_key of None keeps the key, "" removes it.
    Side effect: updates the row (re-encrypting the key when a new one is given).

    A base URL on another origin (scheme, host or port) with a stored key needs the key given again (or removed
    with ""): otherwise anyone who can edit the URL could have the saved key sent to a server of their choice.
    Raises ValidationError with KEY_AGAIN_MESSAGE then."""
    if name is not None:
        name = name.strip()
        if not name:
            raise ValidationError("Give the provider a name.")
        if ProviderCredential.objects.filter(owner=credential.owner, name__iexact=name).exclude(pk=credential.pk).exists():
            raise ValidationError(f"You already have a provider named “{name}”.")
        credential.name = name[:100]
    if base_url is not None:
        base_url = clean_base_url(base_url)
        if credential.has_key and api_key is None and _origin(base_url) != _origin(credential.base_url):
            raise ValidationError(KEY_AGAIN_MESSAGE)
        credential.base_url = base_url
    if model is not None:
        if not model.strip():
            raise ValidationError("Give the model name the endpoint expects.")
        credential.model = model.strip()[:200]
    if api_key is not None:
        for attribute, value in _key_fields(api_key).items():
            setattr(credential, attribute, value)
    credential.save()
    return credential


def provider_credential_delete(*, credential: ProviderCredential) -> None:
    """Side effect: deletes the row; audit entries keep the provider's name and URL."""
    credential.delete()


def provider_credentials_reencrypt() -> int:
    """Re-encrypt every saved key with the current encryption key (after a rotation). Returns how many changed;
    keys no configured key can open are left as they are and logged."""
    changed = 0
    for credential in ProviderCredential.objects.exclude(api_key_encrypted=""):
        try:
            token = encryption_rotate(credential.api_key_encrypted)
        except DecryptionError:
            logger.warning("The key of provider %s cannot be decrypted; its owner must enter it again", credential.code)
            continue
        ProviderCredential.objects.filter(pk=credential.pk).update(api_key_encrypted=token)
        changed += 1
    return changed


def provider_choice_validate(*, owner, provider: str) -> str:
    """A provider choice as stored in a job's config: SITE_DEFAULT or the code of one of the owner's credentials.
    Raises ValidationError when the site has no default, and Http404 for a code that is not the owner's."""
    provider = str(provider or "").strip()
    if provider in ("", SITE_DEFAULT):
        if site_default_endpoint() is None:
            raise ValidationError("This server has no default chat endpoint; choose one of your saved providers "
                                  "or add one under Providers.")
        return SITE_DEFAULT
    return str(provider_credential_get_for_user(user=owner, code=provider).code)


def provider_credential_test(*, credential: ProviderCredential) -> tuple[bool, str]:
    """Send one tiny chat request to the saved endpoint. Returns (ok, readable message). The message gives the
    outcome and HTTP status, never what the endpoint answered: this request runs in the web process, to an address
    the user chose, and must not become a way to read other servers' pages.
    Side effect: one audit row (the request leaves the machine)."""
    try:
        client = provider_client(owner=credential.owner, provider=str(credential.code),
                                 purpose=ExternalCallAudit.Purpose.TEST, timeout=TEST_TIMEOUT, max_retries=0,
                                 concurrency=1)
    except ReadableError as exc:
        return False, str(exc)
    messages = [{"role": "user", "content": "Reply with the single word OK."}]
    with client:
        result = client.call(messages, max_tokens=5, temperature=0)
    if not result.ok:
        return False, result.error
    return True, f"{credential.name} answered in {result.seconds:.1f} s with a chat completion (HTTP {result.status})."


def pii_pattern_create(*, owner, label: str, pattern: str) -> PiiPattern:
    """Save a user's own PII pattern. Side effect: one PiiPattern row. Raises ValidationError for a bad
    label or regular expression (one that does not compile, or matches empty text)."""
    try:
        label = clean_label(label)
        compile_user_pattern(pattern)
    except ReadableError as exc:
        raise ValidationError(str(exc))
    return PiiPattern.objects.create(owner=owner, label=label, pattern=pattern)


def pii_pattern_delete(*, pattern: PiiPattern) -> None:
    pattern.delete()
