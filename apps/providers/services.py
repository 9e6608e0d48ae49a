"""Writes of the providers app: saved endpoints with encrypted keys, PII patterns, the audit log of external
calls, and the bridge from a saved choice to a working workers.common.llm.ChatClient.

For other apps (generation, the judge of curation), the usual sequence in a worker is:

    endpoint = provider_endpoint_resolve(owner=user, provider=choice)      # decrypts the key here
    with endpoint.client() as client:
        client.complete_many(conversations, on_result=audit_hook(owner=user, endpoint=endpoint,
                                                                  purpose=ExternalCallAudit.Purpose.JUDGE, job=job))

`choice` is what a form or the API stored in the job's config: SITE_DEFAULT or a credential's code."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404

from apps.core.crypto import DecryptionError, decrypt, encrypt, encryption_rotate
from apps.providers.models import (
    KEY_HINT_CHARS,
    KEY_HINT_MIN_LENGTH,
    ExternalCallAudit,
    PiiPattern,
    ProviderCredential,
)
from apps.providers.selectors import (
    pii_pattern_list_for_user,
    provider_credential_get_for_user,
    site_default_endpoint,
)
from workers.common.errors import ReadableError
from workers.common.llm import ChatClient, Result, normalise_base_url
from workers.common.outbound import GuardedTransport, check_url
from workers.common.pii import PiiScrubber, clean_label, compile_user_pattern

logger = logging.getLogger(__name__)

SITE_DEFAULT = "default"
SITE_DEFAULT_NAME = "site default"
# A connection test answers the person waiting on the page: one short try, no retries.
TEST_TIMEOUT = 15.0
KEY_AGAIN_MESSAGE = "Enter the API key again: the key is only sent to the endpoint it was saved for."


def allowed_endpoints() -> list[str]:
    """The administrator's allow-list of non-public hosts and ranges (GARAGE_ALLOWED_ENDPOINTS). Guards are given
    this function rather than its value, so that they read the setting at each check."""
    return settings.GARAGE_ALLOWED_ENDPOINTS


def outbound_transport() -> GuardedTransport:
    """An httpx transport that refuses non-public addresses outside the allow-list and connects only to the
    addresses it checked (workers.common.outbound). Every request to an address a user chose goes through one."""
    return GuardedTransport(allowed=allowed_endpoints)


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint with its decrypted key: made in the worker right before use, never stored."""

    base_url: str
    model: str
    api_key: str = field(repr=False, default="")
    provider: str = SITE_DEFAULT_NAME  # what the audit log names it by
    credential_id: int | None = None
    # The site's default endpoint (GARAGE_LLM_BASE_URL) is set by an administrator, not by users, and usually is
    # a server on this machine or its private network: it is trusted and not put through the address guard.
    trusted: bool = False

    def client(self, *, timeout: float | None = None, max_retries: int | None = None,
               concurrency: int | None = None) -> ChatClient:
        """A ChatClient for this endpoint, with the site's timeout, retry and concurrency settings by default."""
        return ChatClient(
            base_url=self.base_url, api_key=self.api_key, model=self.model,
            timeout=settings.GARAGE_LLM_TIMEOUT if timeout is None else timeout,
            max_retries=settings.GARAGE_LLM_MAX_RETRIES if max_retries is None else max_retries,
            concurrency=settings.GARAGE_LLM_CONCURRENCY if concurrency is None else concurrency,
            transport=None if self.trusted else outbound_transport(),
        )


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


def provider_endpoint_resolve(*, owner, provider: str) -> Endpoint:
    """The endpoint a stored choice names, with its key decrypted: call this in the worker, right before use.
    Raises ReadableError when the choice no longer works (credential deleted, keys changed, no default)."""
    if provider in ("", None, SITE_DEFAULT):
        default = site_default_endpoint()
        if default is None:
            raise ReadableError("This server no longer has a default chat endpoint; choose another provider.")
        return Endpoint(base_url=default["base_url"], model=default["model"], api_key=settings.GARAGE_LLM_API_KEY,
                        provider=SITE_DEFAULT_NAME, trusted=True)
    try:
        credential = provider_credential_get_for_user(user=owner, code=provider)
    except Http404:
        raise ReadableError("The chosen provider was deleted; choose another one and start again.")
    try:
        api_key = decrypt(credential.api_key_encrypted) if credential.api_key_encrypted else ""
    except DecryptionError:
        raise ReadableError(f"The saved key of the provider “{credential.name}” can no longer be read (this server's "
                            "encryption key changed). Enter the key again on the Providers page.")
    return Endpoint(base_url=credential.base_url, model=credential.model, api_key=api_key, provider=credential.name,
                    credential_id=credential.pk)


def external_call_audit_add(*, owner, endpoint: Endpoint, purpose: str, result: Result, job=None,
                            pii_replacements: int = 0) -> ExternalCallAudit:
    """Record one request that sent text to an external endpoint. Side effect: one ExternalCallAudit row."""
    return ExternalCallAudit.objects.create(
        owner=owner, credential_id=endpoint.credential_id, job=job, provider=endpoint.provider[:100],
        endpoint=endpoint.base_url[:500], model=endpoint.model[:200], purpose=purpose,
        characters_sent=result.characters_sent, attempts=max(result.attempts, 0), ok=result.ok,
        status_code=result.status, error=(result.error or "")[:300], pii_replacements=pii_replacements,
        duration_ms=int(result.seconds * 1000),
    )


def audit_hook(*, owner, endpoint: Endpoint, purpose: str, job=None):
    """A callback for ChatClient.complete_many (on_result) or EndpointGenerator (on_call) that writes one
    audit row per request. Requests that were never sent (after a fatal error) leave no row."""

    def record(result: Result, pii_replacements: int = 0) -> None:
        if result.attempts:
            external_call_audit_add(owner=owner, endpoint=endpoint, purpose=purpose, result=result, job=job,
                                    pii_replacements=pii_replacements)

    return record


def provider_credential_test(*, credential: ProviderCredential) -> tuple[bool, str]:
    """Send one tiny chat request to the saved endpoint. Returns (ok, readable message). The message gives the
    outcome and HTTP status, never what the endpoint answered: this request runs in the web process, to an address
    the user chose, and must not become a way to read other servers' pages.
    Side effect: one audit row (the request leaves the machine)."""
    try:
        endpoint = provider_endpoint_resolve(owner=credential.owner, provider=str(credential.code))
    except ReadableError as exc:
        return False, str(exc)
    messages = [{"role": "user", "content": "Reply with the single word OK."}]
    with endpoint.client(timeout=TEST_TIMEOUT, max_retries=0, concurrency=1) as client:
        result = client.call(messages, max_tokens=5, temperature=0)
    external_call_audit_add(owner=credential.owner, endpoint=endpoint, purpose=ExternalCallAudit.Purpose.TEST,
                            result=result)
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


def pii_scrubber_for_user(*, user) -> PiiScrubber:
    """The built-in detectors plus the user's own patterns."""
    return PiiScrubber([(p.label, p.pattern) for p in pii_pattern_list_for_user(user=user)])

