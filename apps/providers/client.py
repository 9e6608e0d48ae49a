"""The one client for external chat models: every feature that sends text to an OpenAI-compatible endpoint (question
generation, the curation judge, the held-out evaluation judge, GRPO judge rewards, prompt optimization, the
connection test) goes through this module, so that each request gets the same treatment:

- the endpoint is the owner's saved provider or the site's default (settings GARAGE_LLM_*), resolved with its key
  decrypted right before use (`provider_resolve`), or a readable error when the choice no longer works;
- requests to an address a user chose go through the outbound guard (workers.common.outbound): the site default,
  set by an administrator, is trusted;
- the site's timeout, retries and concurrency apply unless a caller asks for less (workers.common.llm.ChatClient
  retries, keeps keys out of every message, and stops a batch after an error no retry can fix);
- personal data is scrubbed before sending when asked (the built-in detectors plus the owner's own patterns);
- every request that left the machine gets one ExternalCallAudit row.

Web-safe (no torch, no engine), so the web process may use it too, as the connection test does. In a worker:

    with provider_client(owner=user, provider=choice, purpose=ExternalCallAudit.Purpose.JUDGE, job=job,
                         scrub_pii=True) as client:
        results = client.complete_many(conversations, temperature=0)

`choice` is what a form or the API stored in the job's config: SITE_DEFAULT or a credential's code (checked when
the job was started by apps.providers.services.provider_choice_validate). Engine code that takes a ChatClient and
scrubs or audits through callbacks of its own gets `client.chat`, `client.scrubber` and `client.record`."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.http import Http404

from apps.core.crypto import DecryptionError, decrypt
from apps.providers.models import ExternalCallAudit
from apps.providers.selectors import (
    pii_pattern_list_for_user,
    provider_credential_get_for_user,
    site_default_endpoint,
)
from workers.common.errors import ReadableError
from workers.common.llm import ChatClient, Result
from workers.common.outbound import GuardedTransport
from workers.common.pii import PiiScrubber

SITE_DEFAULT = "default"
SITE_DEFAULT_NAME = "site default"


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


def provider_resolve(*, owner, provider: str | None) -> Endpoint:
    """The endpoint a stored choice names (SITE_DEFAULT or empty: the site's default; else the code of one of the
    owner's saved providers), with its key decrypted: call this in the worker, right before use.
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


def pii_scrubber_for_user(*, user) -> PiiScrubber:
    """The built-in detectors plus the user's own patterns."""
    return PiiScrubber([(p.label, p.pattern) for p in pii_pattern_list_for_user(user=user)])


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


class ProviderClient:
    """Requests to one resolved endpoint on behalf of its owner, for one purpose (see the module docstring).

    The ChatClient (`chat`) is made on first use with the site's timeout, retries and concurrency, or the limits
    given here; close() (or leaving a with block) closes it. `scrub_pii` scrubs every conversation sent through
    call() and complete_many(); `scrubber` is that PiiScrubber (None without scrubbing), for engine code that
    scrubs as it builds its requests. `record(result, pii_replacements)` writes the audit row of one request:
    call() and complete_many() call it themselves; engine code handed `chat` is given it as its callback."""

    def __init__(self, *, owner, endpoint: Endpoint, purpose: str, job=None, scrub_pii: bool = False,
                 timeout: float | None = None, max_retries: int | None = None, concurrency: int | None = None):
        self.owner, self.endpoint, self.purpose, self.job = owner, endpoint, purpose, job
        self.scrubber = pii_scrubber_for_user(user=owner) if scrub_pii else None
        self._limits = {"timeout": timeout, "max_retries": max_retries, "concurrency": concurrency}
        self._chat: ChatClient | None = None

    def __repr__(self):  # the endpoint's key stays out of reprs (Endpoint leaves it out too)
        return f"ProviderClient(provider={self.endpoint.provider!r}, model={self.endpoint.model!r})"

    @property
    def chat(self) -> ChatClient:
        if self._chat is None:
            self._chat = self.endpoint.client(**self._limits)
        return self._chat

    def record(self, result: Result, pii_replacements: int = 0) -> None:
        """One audit row for a request that left the machine; requests never sent (after a fatal error) leave none."""
        if result.attempts:
            external_call_audit_add(owner=self.owner, endpoint=self.endpoint, purpose=self.purpose, result=result,
                                    job=self.job, pii_replacements=pii_replacements)

    def _scrub(self, conversations: list[list[dict]]) -> tuple[list[list[dict]], list[int]]:
        if self.scrubber is None:
            return conversations, [0] * len(conversations)
        return self.scrubber.scrub_conversations(conversations)

    def call(self, messages: list[dict], **params) -> Result:
        """One request (ChatClient.call: a failure comes back as a Result with `error` set), audited."""
        (messages,), (replacements,) = self._scrub([messages])
        result = self.chat.call(messages, **params)
        self.record(result, replacements)
        return result

    def complete_many(self, conversations: list[list[dict]], **params) -> list[Result]:
        """Every conversation (ChatClient.complete_many: one Result per input, in input order), each request audited
        as it finishes."""
        conversations, replacements = self._scrub(conversations)
        return self.chat.complete_many(conversations, on_result=lambda r: self.record(r, replacements[r.index]),
                                       **params)

    def close(self) -> None:
        if self._chat is not None:
            self._chat.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def provider_client(*, owner, provider: str | None, purpose: str, job=None, scrub_pii: bool = False,
                    timeout: float | None = None, max_retries: int | None = None,
                    concurrency: int | None = None) -> ProviderClient:
    """A ProviderClient for a stored choice (provider_resolve: raises ReadableError when it no longer works)."""
    return ProviderClient(owner=owner, endpoint=provider_resolve(owner=owner, provider=provider), purpose=purpose,
                          job=job, scrub_pii=scrub_pii, timeout=timeout, max_retries=max_retries,
                          concurrency=concurrency)
