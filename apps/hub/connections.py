"""Writes of the hub app about the user's Hugging Face connection: connecting an account (OAuth or a pasted token),
keeping its token fresh, disconnecting, and listing the connected account's repositories. Publishing (preferences,
the evaluation gate, push jobs) is in apps.hub.pushes; the Hub client itself is apps.hub.publish.

Tokens are encrypted before they are stored (apps.core.crypto) and decrypted only right before a request to the
Hub: in the web process to check a token or list repositories, in the worker to push. A push job's config names
the fine-tune and the connection by id; the token itself never enters a job, an event, a page or a log line."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from datetime import timedelta
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.crypto import DecryptionError, decrypt, encrypt
from apps.hub.models import TOKEN_HINT_CHARS, TOKEN_HINT_MIN_LENGTH, HubConnection
from apps.hub.publish import hub_model_list, hub_whoami
from apps.providers.client import outbound_transport
from workers.common.errors import ReadableError
from workers.common.outbound import OutboundRefused

logger = logging.getLogger(__name__)

OAUTH_SCOPES = "openid profile write-repos manage-repos"
OAUTH_SESSION_KEY = "hub_oauth"
OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                          "unsupported_grant_type", "invalid_scope"})
# An access token this close to its expiry is refreshed first: a push may take a while to reach the Hub.
REFRESH_MARGIN = timedelta(minutes=2)
# Shorter than SQLite's busy timeout (20 s): the refresh holds a row lock while it waits for the Hub.
TOKEN_REQUEST_TIMEOUT = 15.0
RECONNECT_MESSAGE = ("Your Hugging Face sign-in has expired and could not be renewed. Connect your account again on "
                     "the Hugging Face page.")


class ReconnectRequired(ValidationError):
    """The stored sign-in no longer works; the user has to connect again."""


class OAuthStateError(ValidationError):
    """The OAuth callback does not belong to a sign-in this server started for this browser."""


def hub_endpoint() -> str:
    """The Hub this server publishes to (HF_ENDPOINT), read at call time."""
    return (settings.HF_ENDPOINT or "https://huggingface.co").rstrip("/")


def hub_oauth_available() -> bool:
    return bool(settings.HF_OAUTH_CLIENT_ID and settings.HF_OAUTH_CLIENT_SECRET)


# ------------------------------------------------------------------------------------------------- connecting

def _hint(token: str) -> str:
    return token[-TOKEN_HINT_CHARS:] if len(token) >= TOKEN_HINT_MIN_LENGTH else ""


def _connection_save(*, owner, method: str, endpoint: str, username: str, access_token: str, refresh_token: str = "",
                     expires_in: int | None = None, scope: str = "") -> HubConnection:
    """Create or replace the user's one connection, tokens encrypted."""
    fields = {
        "method": method, "endpoint": endpoint, "username": username[:100],
        "access_token_encrypted": encrypt(access_token),
        "refresh_token_encrypted": encrypt(refresh_token) if refresh_token else "",
        "expires_at": timezone.now() + timedelta(seconds=int(expires_in)) if expires_in else None,
        "scope": scope[:300], "token_hint": _hint(access_token) if method == HubConnection.Method.TOKEN else "",
        "needs_reconnect": False,
    }
    connection, _ = HubConnection.objects.update_or_create(owner=owner, defaults=fields)
    return connection


def hub_connection_create_with_token(*, owner, token: str) -> HubConnection:
    """Check a pasted access token with the Hub (whoami) and keep it, encrypted, as the user's connection.

    Side effects: one request to the Hub; creates or replaces the user's HubConnection. Raises ValidationError for
    an empty or malformed token, one the Hub refuses, a read-only token, or a Hub that cannot be reached."""
    token = (token or "").strip()
    if not token:
        raise ValidationError("Paste an access token from huggingface.co/settings/tokens.")
    # Tokens are short ASCII strings; anything else could not even be sent in an HTTP header.
    if len(token) > 2048 or re.search(r"\s", token) or not token.isascii():
        raise ValidationError("That does not look like an access token: it is too long or contains spaces or "
                              "characters that tokens never have.")
    endpoint = hub_endpoint()
    try:
        who = hub_whoami(endpoint=endpoint, token=token)
    except ReadableError as exc:
        raise ValidationError(str(exc))
    if who["role"] == "read":
        raise ValidationError("This token can only read. Publishing needs a token with the “write” role (or a "
                              "fine-grained token allowed to write to your repositories).")
    if not who["name"]:
        raise ValidationError("The Hub accepted the token but did not say whose it is; try another token.")
    logger.info("User %s connected Hugging Face account %s with a token", owner.pk, who["name"])
    return _connection_save(owner=owner, method=HubConnection.Method.TOKEN, endpoint=endpoint, username=who["name"],
                            access_token=token)


def hub_connection_delete(*, connection: HubConnection) -> None:
    """Disconnect: delete the connection and with it every stored token. Nothing is sent to the Hub (a pasted
    token stays valid there until its owner deletes it on huggingface.co)."""
    connection.delete()


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hub_oauth_start(*, session, redirect_uri: str) -> str:
    """Begin the OAuth authorization-code flow: remember a random state and a PKCE verifier in the session and
    return the Hub's authorization URL to send the browser to. Raises ValidationError when OAuth is not set up."""
    if not hub_oauth_available():
        raise ValidationError("Signing in with Hugging Face is not set up on this server (HF_OAUTH_CLIENT_ID and "
                              "HF_OAUTH_CLIENT_SECRET). Paste an access token instead.")
    state = secrets.token_urlsafe(32)
    verifier, challenge = _pkce_pair()
    endpoint = hub_endpoint()
    session[OAUTH_SESSION_KEY] = {"state": state, "verifier": verifier, "redirect_uri": redirect_uri,
                                  "endpoint": endpoint}
    query = {"client_id": settings.HF_OAUTH_CLIENT_ID, "redirect_uri": redirect_uri, "response_type": "code",
             "scope": OAUTH_SCOPES, "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
    return f"{endpoint}/oauth/authorize?{urlencode(query)}"


class _TokenRequestFailed(Exception):
    def __init__(self, message: str, *, network: bool = False):
        super().__init__(message)
        self.network = network


def _oauth_request(method: str, url: str, **kwargs) -> dict:
    """One request to the Hub's OAuth endpoints, as JSON, through the outbound guard. Raises _TokenRequestFailed
    (never with a token in it)."""
    try:
        with httpx.Client(transport=outbound_transport(), trust_env=False, timeout=TOKEN_REQUEST_TIMEOUT) as client:
            response = client.request(method, url, **kwargs)
    except OutboundRefused as exc:
        raise _TokenRequestFailed(str(exc)) from None
    except httpx.TransportError:
        raise _TokenRequestFailed("Could not reach Hugging Face: the network seems to be down. Try again later.",
                                  network=True) from None
    if response.status_code == 429:
        wait = response.headers.get("Retry-After", "").strip()
        raise _TokenRequestFailed(f"Hugging Face is limiting requests right now (rate limit). Try again "
                                  f"{'in ' + wait + ' seconds' if wait.isdigit() else 'in a few minutes'}.", network=True)
    if response.status_code != 200:
        try:
            code = response.json().get("error", "")
        except (ValueError, AttributeError):
            code = ""
        # Only the standard OAuth error codes are named: nothing else the server sent is repeated.
        code = code if isinstance(code, str) and code in OAUTH_ERRORS else ""
        raise _TokenRequestFailed(f"Hugging Face refused the sign-in (HTTP {response.status_code}{', ' + code if code else ''}).")
    try:
        return response.json()
    except ValueError:
        raise _TokenRequestFailed("Hugging Face answered the sign-in with something that is not JSON.") from None


def _token_grant(endpoint: str, data: dict) -> dict:
    return _oauth_request("POST", f"{endpoint}/oauth/token", data=data,
                          auth=(settings.HF_OAUTH_CLIENT_ID, settings.HF_OAUTH_CLIENT_SECRET))


def hub_oauth_finish(*, owner, session, params) -> HubConnection:
    """Complete the OAuth flow from the callback's query: check the state against the one in the session (used
    once), exchange the code for tokens, read the username from /oauth/userinfo and keep the tokens encrypted.

    Side effects: requests to the Hub; creates or replaces the user's HubConnection. Raises OAuthStateError for a
    missing or mismatched state, ValidationError for a refused sign-in or an unreachable Hub."""
    started = session.pop(OAUTH_SESSION_KEY, None)
    state = params.get("state") or ""
    if not started or not state or not secrets.compare_digest(str(started.get("state", "")), state):
        raise OAuthStateError("This sign-in did not start here, or it was already used (its state does not match). "
                              "Nothing was connected. Start again from the Hugging Face page.")
    if params.get("error"):
        raise ValidationError("Hugging Face did not connect your account"
                              f"{' (you declined)' if params.get('error') == 'access_denied' else ''}. Nothing was changed.")
    code = params.get("code") or ""
    if not code:
        raise ValidationError("Hugging Face sent no authorization code back. Start again from the Hugging Face page.")
    endpoint = started["endpoint"]
    try:
        tokens = _token_grant(endpoint, {"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": started["redirect_uri"], "code_verifier": started["verifier"],
                                         "client_id": settings.HF_OAUTH_CLIENT_ID})
        access = tokens.get("access_token") or ""
        if not access:
            raise _TokenRequestFailed("Hugging Face answered without an access token.")
        user = _oauth_request("GET", f"{endpoint}/oauth/userinfo", headers={"Authorization": f"Bearer {access}"})
    except _TokenRequestFailed as exc:
        raise ValidationError(str(exc))
    username = user.get("preferred_username") or user.get("name") or ""
    if not username:
        raise ValidationError("Hugging Face did not say which account signed in; try again.")
    logger.info("User %s connected Hugging Face account %s with OAuth", owner.pk, username)
    return _connection_save(owner=owner, method=HubConnection.Method.OAUTH, endpoint=endpoint, username=username,
                            access_token=access, refresh_token=tokens.get("refresh_token") or "",
                            expires_in=tokens.get("expires_in"), scope=tokens.get("scope") or OAUTH_SCOPES)


def _expiring(connection: HubConnection) -> bool:
    return (connection.method == HubConnection.Method.OAUTH and connection.expires_at is not None
            and connection.expires_at - REFRESH_MARGIN <= timezone.now())


def _refresh(connection: HubConnection) -> HubConnection:
    """Renew an expiring OAuth token with its refresh token. Marks the connection as needing a new sign-in (and
    forgets its useless tokens) when the Hub refuses; a network failure changes nothing and says so."""
    failure = None
    with transaction.atomic():
        locked = HubConnection.objects.select_for_update().get(pk=connection.pk)
        if not _expiring(locked):
            return locked  # another process refreshed it meanwhile
        try:
            refresh_token = decrypt(locked.refresh_token_encrypted) if locked.refresh_token_encrypted else ""
        except DecryptionError:
            refresh_token = ""
        if refresh_token and hub_oauth_available():
            try:
                tokens = _token_grant(locked.endpoint, {"grant_type": "refresh_token", "refresh_token": refresh_token})
            except _TokenRequestFailed as exc:
                if exc.network:
                    raise ValidationError(str(exc))
                tokens = {}
            if tokens.get("access_token"):
                locked.access_token_encrypted = encrypt(tokens["access_token"])
                if tokens.get("refresh_token"):  # the Hub rotates refresh tokens
                    locked.refresh_token_encrypted = encrypt(tokens["refresh_token"])
                expires_in = tokens.get("expires_in")
                locked.expires_at = timezone.now() + timedelta(seconds=int(expires_in)) if expires_in else None
                locked.save(update_fields=["access_token_encrypted", "refresh_token_encrypted", "expires_at", "updated_at"])
                logger.info("Refreshed the Hugging Face token of connection %s", locked.code)
                return locked
        failure = locked
    HubConnection.objects.filter(pk=failure.pk).update(needs_reconnect=True, access_token_encrypted="",
                                                       refresh_token_encrypted="", updated_at=timezone.now())
    logger.info("The Hugging Face token of connection %s could not be refreshed; its owner must connect again",
                failure.code)
    raise ReconnectRequired(RECONNECT_MESSAGE)


def hub_connection_token(*, connection: HubConnection) -> str:
    """The connection's access token, decrypted, refreshed first when it is (about to be) expired.

    Side effects: may request new tokens from the Hub and store them. Raises ReconnectRequired when the user has to
    connect again, ValidationError when the Hub cannot be reached to refresh."""
    if connection.needs_reconnect or not connection.access_token_encrypted:
        raise ReconnectRequired(RECONNECT_MESSAGE)
    if _expiring(connection):
        connection = _refresh(connection)
    try:
        return decrypt(connection.access_token_encrypted)
    except DecryptionError:
        raise ReconnectRequired("Your saved Hugging Face sign-in can no longer be read (this server's encryption key "
                                "changed). Connect your account again on the Hugging Face page.")


def hub_repo_list(*, connection: HubConnection) -> list[dict]:
    """The connected account's model repositories (one request to the Hub). Raises ValidationError readably."""
    token = hub_connection_token(connection=connection)
    try:
        return hub_model_list(endpoint=connection.endpoint, token=token, author=connection.username)
    except ReadableError as exc:
        raise ValidationError(str(exc))
