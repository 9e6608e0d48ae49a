"""Writes of the hub app: connecting a Hugging Face account (OAuth or a pasted token), keeping its token fresh,
the evaluation gate, and push jobs (started here, run by its job type, apps.hub.jobs, on queue `default`).

Tokens are encrypted before they are stored (apps.core.crypto) and decrypted only right before a request to the
Hub: in the web process to check a token or list repositories, in the worker to push. A push job's config names
the fine-tune and the connection by id; the token itself never enters a job, an event, a page or a log line."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.crypto import DecryptionError, decrypt, encrypt
from apps.core.models import Job, JobEvent
from apps.core.services import job_create, job_event_add
from apps.evaluation.heldout import heldout_evaluation_expected
from apps.hub.models import TOKEN_HINT_CHARS, TOKEN_HINT_MIN_LENGTH, HubConnection, HubPreferences
from apps.hub.publish import hub_model_list, hub_whoami
from apps.hub.selectors import ARTIFACTS, hub_connection_get, hub_preferences_get, hub_push_files
from apps.providers.services import outbound_transport
from apps.training.models import FineTune
from apps.training.services import finetune_artifact_path
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
# A {field} of a repository name pattern: only {name}, {date} and {id} are known.
_PATTERN_FIELD = re.compile(r"\{([^{}]*)\}")
_REPO_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")


class ReconnectRequired(ValidationError):
    """The stored sign-in no longer works; the user has to connect again."""


class OAuthStateError(ValidationError):
    """The OAuth callback does not belong to a sign-in this server started for this browser."""


class PublishBlocked(ValidationError):
    """The evaluation gate refuses to publish (the model is worse and the user's setting blocks that)."""


class ConfirmationRequired(ValidationError):
    """The model is worse than its base: publishing needs an explicit confirmation."""


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


def hub_preferences_update(*, owner, **fields) -> HubPreferences:
    """Save the user's publishing preferences (any of auto_push, repo_pattern, auto_private, gate_threshold,
    block_worse). Raises ValidationError for a pattern that cannot make a repository name or a bad threshold."""
    preferences = hub_preferences_get(user=owner)
    allowed = {"auto_push", "repo_pattern", "auto_private", "gate_threshold", "block_worse"}
    for name, value in fields.items():
        if name in allowed and value is not None:
            setattr(preferences, name, value)
    preferences.repo_pattern = (preferences.repo_pattern or "").strip() or "{name}"
    hub_repo_name_render(pattern=preferences.repo_pattern, name="example-model", code="0123abcd")  # validates it
    try:
        threshold = float(preferences.gate_threshold)
    except (TypeError, ValueError):
        raise ValidationError("The threshold must be a number, such as 0.02.")
    if not 0.0 <= threshold <= 1.0:
        raise ValidationError("The threshold must be between 0 and 1 (a difference in the evaluation's metric).")
    preferences.gate_threshold = threshold
    preferences.save()
    return preferences


# ------------------------------------------------------------------------------------------------ the gate

@dataclass(frozen=True)
class PublishGate:
    """How the tuned model compares with its base on the held-out evaluation, and what that means for publishing."""

    evaluated: bool
    metric: str = ""
    base: float | None = None
    tuned: float | None = None
    threshold: float = 0.0
    block_worse: bool = False

    @property
    def worse(self) -> bool:
        return self.evaluated and self.tuned < self.base - self.threshold

    @property
    def blocked(self) -> bool:
        return self.worse and self.block_worse

    @property
    def needs_confirmation(self) -> bool:
        return self.worse and not self.block_worse

    @property
    def message(self) -> str:
        if not self.evaluated:
            return "Not evaluated: there is no held-out evaluation of this model yet, so nothing says whether it beats its base."
        comparison = (f"On the held-out evaluation ({self.metric}) the tuned model scores {self.tuned:.3f} against "
                      f"{self.base:.3f} for its base")
        if not self.worse:
            return f"{comparison}."
        allowed = f" (more than the allowed {self.threshold:g} below it)" if self.threshold else ""
        if self.block_worse:
            return (f"{comparison}: it is worse{allowed}, and your settings block publishing of worse models. Change "
                    "that setting on the Hugging Face page to publish it anyway.")
        return f"{comparison}: it is worse{allowed}. Confirm that you want to publish it anyway."

    def as_dict(self) -> dict:
        return {**asdict(self), "worse": self.worse, "blocked": self.blocked,
                "needs_confirmation": self.needs_confirmation, "message": self.message}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def hub_publish_gate(*, finetune: FineTune, confirmed: bool = False, enforce: bool = False) -> PublishGate:
    """The evaluation gate, the one place every way of publishing (page, API, automatic push) goes through.

    Reads `finetune.metrics["evaluation"]` ({"metric", "base", "tuned", ...}); when it is absent or incomplete the
    model is "not evaluated", which is shown but never blocks. With enforce=True, raises PublishBlocked when the
    model is worse than its base by more than the owner's threshold and their setting blocks that, and
    ConfirmationRequired when it is worse and `confirmed` is False."""
    preferences = hub_preferences_get(user=finetune.owner)
    evaluation = (finetune.metrics or {}).get("evaluation")
    base = tuned = None
    if isinstance(evaluation, dict):
        base, tuned = _number(evaluation.get("base")), _number(evaluation.get("tuned"))
    if base is None or tuned is None:
        gate = PublishGate(evaluated=False, threshold=preferences.gate_threshold, block_worse=preferences.block_worse)
    else:
        gate = PublishGate(evaluated=True, metric=str(evaluation.get("metric") or "score"), base=base, tuned=tuned,
                           threshold=preferences.gate_threshold, block_worse=preferences.block_worse)
    if enforce and gate.blocked:
        raise PublishBlocked(gate.message)
    if enforce and gate.needs_confirmation and not confirmed:
        raise ConfirmationRequired(gate.message)
    return gate


# ------------------------------------------------------------------------------------------------ pushing

def hub_repo_name_render(*, pattern: str, name: str, code: str = "", day=None) -> str:
    """A repository name from a pattern such as "{name}-{date}"; ValidationError when it cannot make a valid one.

    The fields are replaced as plain text. str.format would also obey format specifications written by the user:
    "{name:>100000000}" pads to 100 MB, "{name:>1e15}" fails with an unexpected error."""
    safe = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]+", "-", name)).strip("-.") or "model"
    values = {"name": safe, "date": (day or timezone.localdate()).isoformat(), "id": code.replace("-", "")[:8]}
    unknown = [field for field in _PATTERN_FIELD.findall(pattern) if field not in values]
    outside = _PATTERN_FIELD.sub("", pattern)
    if unknown or "{" in outside or "}" in outside:
        shown = f" (not “{{{unknown[0][:40]}}}”)" if unknown else ""
        raise ValidationError("The repository name pattern may only use {name}, {date} and {id}, such as "
                              f"“{{name}}-{{date}}”{shown}.")
    return hub_repo_name_clean(name=_PATTERN_FIELD.sub(lambda match: values[match.group(1)], pattern))


def hub_repo_name_clean(*, name: str) -> str:
    """A repository name (without namespace) as the Hub accepts it; ValidationError otherwise."""
    name = (name or "").strip()
    if not _REPO_NAME.fullmatch(name) or "--" in name or ".." in name or name.endswith(".git"):
        raise ValidationError(f"“{name[:100]}” is not a valid repository name: use letters, digits, “-”, “_” and "
                              "“.”, at most 96 characters, starting with a letter or digit.")
    return name


def hub_repo_id_clean(*, connection: HubConnection, repo: str) -> str:
    """"name" or "namespace/name" as a full repository id, in the connected account's namespace by default."""
    repo = (repo or "").strip().strip("/")
    if repo.startswith(("http://", "https://")):
        repo = repo.split("://", 1)[1].split("/", 1)[-1]  # a pasted repository URL
    parts = repo.split("/")
    if not repo or len(parts) > 2:
        raise ValidationError("Give the repository as a name, or as “namespace/name”.")
    namespace = parts[0] if len(parts) == 2 else connection.username
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", namespace):
        raise ValidationError(f"“{namespace[:100]}” is not a valid user or organization name.")
    return f"{namespace}/{hub_repo_name_clean(name=parts[-1])}"


def _default_artifact(finetune: FineTune) -> str:
    return "model" if finetune.method == FineTune.Method.FULL else "adapter"


def hub_push_start(*, finetune: FineTune, repo: str, what: str = "", private: bool = True, mode: str = "new",
                   confirm_worse: bool = False, automatic: bool = False) -> Job:
    """Queue a push of a fine-tune's output (adapter or full model, merged model, or GGUF files) with a fresh model
    card to a repository of the owner's connected account. Runs on queue `default`.

    Side effects: creates a PUSH Job (config: fine-tune and connection ids, repository, what, visibility, mode) and
    sends its task once the transaction commits. Raises ValidationError for an unfinished model, a missing
    connection, an output that does not exist, a bad name or mode; PublishBlocked or ConfirmationRequired from the
    evaluation gate."""
    if finetune_artifact_path(finetune) is None:
        raise ValidationError("This model has not finished training yet; publish it once it has.")
    connection = hub_connection_get(user=finetune.owner)
    if connection is None:
        raise ValidationError("Connect your Hugging Face account first, on the Hugging Face page.")
    if not connection.is_usable:
        raise ReconnectRequired(RECONNECT_MESSAGE)
    what = what or _default_artifact(finetune)
    if what not in ARTIFACTS:
        raise ValidationError(f"Choose what to publish among: {', '.join(ARTIFACTS)}.")
    if not hub_push_files(finetune=finetune, what=what):
        raise ValidationError(f"This model has no {ARTIFACTS[what].lower()} to publish"
                              f"{' yet: make it under Outputs first' if what in ('merged', 'gguf') else ''}.")
    if mode not in ("new", "existing", "any"):
        raise ValidationError("Choose whether to create a new repository or push to an existing one.")
    repo_id = hub_repo_id_clean(connection=connection, repo=repo)
    gate = hub_publish_gate(finetune=finetune, confirmed=confirm_worse, enforce=True)
    config = {"finetune": finetune.pk, "connection": connection.pk, "repo_id": repo_id, "what": what,
              "private": bool(private), "mode": mode, "automatic": automatic,
              "gate": {"evaluated": gate.evaluated, "worse": gate.worse, "confirmed": bool(confirm_worse and gate.worse)}}
    return job_create(owner=finetune.owner, kind=Job.Kind.PUSH, queue="default", config=config,
                      title=f"Push {finetune.name} to {repo_id}")


# ------------------------------------------------------------------------------------------ automatic push

def _train_job_to_push(job: Job) -> Job | None:
    """The training job whose model may be pushed now, or None. The push waits for the automatic held-out evaluation
    when the training held examples out, so that the publishing gate sees how the model compares with its base; an
    evaluation that failed lets the push go ahead as "not evaluated" (the gate never blocks those). Without held-out
    examples the push follows the training at once."""
    if job.kind == Job.Kind.TRAIN and job.status == Job.Status.SUCCEEDED:
        finetune = FineTune.objects.filter(job=job).first()
        return None if finetune is None or heldout_evaluation_expected(finetune=finetune) else job
    if (job.kind == Job.Kind.EVALUATE and job.config.get("automatic")
            and job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED)):
        finetune = FineTune.objects.filter(pk=job.config.get("finetune")).select_related("job").first()
        if finetune is not None and finetune.job is not None and finetune.job.status == Job.Status.SUCCEEDED:
            return finetune.job
    return None


def hub_push_follow(job: Job) -> None:
    """What follows a training and its automatic held-out evaluation (an `after` of their job types): the automatic
    push of the model, when its owner turned it on (see _train_job_to_push for when)."""
    train_job = _train_job_to_push(job)
    if train_job is not None:
        hub_auto_push(train_job=train_job)


def hub_auto_push(*, train_job: Job) -> Job | None:
    """After a training succeeded: queue a push when its owner turned the automatic push on. What happened (queued,
    or why not) is added to the training job's log; the gate applies as for any push, without confirmation, so a
    model worse than its base is not pushed automatically."""
    preferences = HubPreferences.objects.filter(owner=train_job.owner, auto_push=True).first()
    finetune = FineTune.objects.filter(job=train_job).first()
    if preferences is None or finetune is None:
        return None
    try:
        repo = hub_repo_name_render(pattern=preferences.repo_pattern, name=finetune.name, code=str(finetune.code))
        job = hub_push_start(finetune=finetune, repo=repo, private=preferences.auto_private, mode="any",
                             automatic=True)
    except ValidationError as exc:
        job_event_add(job=train_job, type=JobEvent.Type.LOG,
                      data={"line": f"Automatic push to Hugging Face skipped: {' '.join(exc.messages)}"})
        return None
    job_event_add(job=train_job, type=JobEvent.Type.LOG,
                  data={"line": f"Automatic push to Hugging Face queued: {job.config['repo_id']}", "push_job": str(job.code)})
    return job
