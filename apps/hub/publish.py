"""Talking to the Hugging Face Hub with the real `huggingface_hub` client: who a token belongs to, a user's model
repositories, and pushing a folder of files with its model card. Plain data in and out, no Django models, so the
same code serves the web process (checking a token, listing repos) and the worker (pushing).

`huggingface_hub` reads HF_ENDPOINT once, at import; every call here passes `endpoint=` explicitly so that the
Hub a connection was made on (a mirror, or the tests' local server) is the one that is used. Tokens are passed
per call and never logged: huggingface_hub's own messages carry URLs, not headers, and every failure is turned
into a message written here.

Every request huggingface_hub makes goes through the outbound guard (workers/common/outbound.py): `hub_session_guard`,
called when Django starts (apps.hub.apps), gives huggingface_hub an HTTP client whose transport refuses non-public
addresses outside GARAGE_ALLOWED_ENDPOINTS and connects only to the addresses it checked, the Hub's redirects
(to its file storage) included. A refused address raises OutboundRefused, a ReadableError."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workers.common.errors import Cancelled, ReadableError
from workers.common.outbound import GuardedTransport, httpx2_transport

CARD = "README.md"


def hub_session_guard(*, allowed) -> None:
    """Make huggingface_hub, in this process, send its requests through the outbound guard with `allowed` (an
    allow-list or a function returning one, read at each connection). Uses huggingface_hub's own hook for its
    client (set_client_factory), with the settings of its default client: its request hook, redirects followed,
    per-call timeouts. Environment proxies are not used: a proxied request would go around the guard."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    http = getattr(_http, "httpx2", None) or _http.httpx  # huggingface_hub 2 talks through httpx2, 1 through httpx
    hook = getattr(_http, "hf_request_event_hook", None)

    def client_factory():
        transport = httpx2_transport(allowed) if http.__name__ == "httpx2" else GuardedTransport(allowed)
        return http.Client(event_hooks={"request": [hook] if hook else []}, follow_redirects=True, timeout=None,
                           transport=transport, trust_env=False)

    set_client_factory(client_factory)


def _network_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean the Hub could not be reached at all (no answer), whichever HTTP stack raised them."""
    errors: list[type[Exception]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def hub_error_message(exc: Exception, *, endpoint: str, repo_id: str = "", action: str = "talk to") -> str | None:
    """A readable explanation of a failed Hub request, or None for an error that is not about the Hub.

    Rate limits say when to retry (from Retry-After); permission errors say what permission is missing; a taken
    name says so; an unreachable Hub says the network is down. The server's own words are not repeated: they can
    be long, and are not written for this product's users."""
    from huggingface_hub.errors import HfHubHTTPError

    where = "Hugging Face" if "huggingface.co" in endpoint else f"The Hub at {endpoint}"
    repo = f"“{repo_id}”" if repo_id else "the repository"
    if isinstance(exc, HfHubHTTPError) and getattr(exc, "response", None) is not None:
        status = exc.response.status_code
        if status == 429:
            wait = (exc.response.headers.get("Retry-After") or "").strip()
            when = f"in {wait} seconds" if wait.isdigit() else "in a few minutes"
            return f"{where} is limiting requests from your account right now (rate limit). Try again {when}."
        if status == 401:
            return (f"{where} did not accept your saved sign-in (it expired or was revoked). Connect your account "
                    "again on the Hugging Face page.")
        if status == 403:
            return (f"Your Hugging Face account may not write to {repo}: the name belongs to someone else, or your "
                    "token lacks write permission. Choose a name in your own namespace, or connect with a token "
                    "that has the “write” role.")
        if status == 409:
            return (f"The repository name {repo} is already taken. Push to it as an existing repository if it is "
                    "yours, or choose another name.")
        if status == 404:
            return f"{where} has no repository {repo} that your account can see. Check the name, or create it."
        if 500 <= status < 600:
            return f"{where} had a problem of its own (HTTP {status}) while trying to {action} it. Try again later."
        return f"{where} refused the request (HTTP {status}) while trying to {action} {repo}."
    if isinstance(exc, _network_errors()):
        return f"Could not reach {where.replace('The Hub', 'the Hub')}: the network seems to be down. Try again later."
    return None


def hub_whoami(*, endpoint: str, token: str) -> dict:
    """Who a token belongs to: {"name", "role"}. Raises ReadableError when the Hub refuses it or cannot be reached."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        info = HfApi(endpoint=endpoint).whoami(token=token)
    except (HfHubHTTPError, *_network_errors()) as exc:
        if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code == 401:
            raise ReadableError("Hugging Face did not accept this token. Copy it again from "
                                "huggingface.co/settings/tokens (it starts with hf_).") from None
        raise ReadableError(hub_error_message(exc, endpoint=endpoint, action="check") or "The token could not be checked.") from None
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role") or ""
    return {"name": info.get("name") or "", "role": role}


def hub_model_list(*, endpoint: str, token: str, author: str, limit: int = 500) -> list[dict]:
    """The author's model repositories the token can see: id, private, last modified, downloads, likes."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        models = list(HfApi(endpoint=endpoint).list_models(author=author, token=token, limit=limit))
    except (HfHubHTTPError, *_network_errors()) as exc:
        raise ReadableError(hub_error_message(exc, endpoint=endpoint, action="list the repositories of") or
                            "The repositories could not be listed.") from None
    return [{"id": m.id, "private": bool(m.private), "last_modified": m.last_modified, "downloads": m.downloads or 0,
             "likes": m.likes or 0, "url": f"{endpoint.rstrip('/')}/{m.id}"} for m in models]


@dataclass
class PushConfig:
    endpoint: str
    repo_id: str  # "namespace/name"
    files: dict[str, str]  # path in the repository -> file on this machine
    card: str  # the README.md (model card with YAML metadata)
    texts: dict[str, str] = field(default_factory=dict)  # files written from text here (path in the repository -> content)
    token: str = field(repr=False, default="")
    private: bool = True  # for a repository this push creates; an existing one keeps its visibility
    mode: str = "new"  # "new": must not exist yet; "existing": must exist; "any": created when missing
    commit_message: str = "Upload model from Gemma Garage"


def _stage(files: dict[str, str], texts: dict[str, str], card: str, folder: Path) -> int:
    """Lay the files out as they will be in the repository. Hard links where possible: weights can be gigabytes."""
    total = 0
    for name, text in {**texts, CARD: card}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
        total += len(text.encode())
    for name, source in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        total += target.stat().st_size
    return total


def push(config: PushConfig, reporter) -> dict:
    """Create the repository (unless it should exist already) and upload the files and card in one commit.

    Reports phases: preparing, creating repository, uploading. Returns {"repo_id", "url", "commit_url", "files",
    "bytes", "private", "mode"}. Raises ReadableError (rate limit, permission, name taken, network down) or
    Cancelled between steps."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=config.endpoint, library_name="gemma-garage")
    with tempfile.TemporaryDirectory(prefix="hub-push-") as staging:
        names = sorted({*config.files, *config.texts, CARD})
        reporter.phase("preparing", f"{len(names)} files with the model card")
        size = _stage(config.files, config.texts, config.card, Path(staging))
        if reporter.should_stop():
            raise Cancelled()
        action = "create"
        try:
            if config.mode in ("new", "any"):
                reporter.phase("creating repository", config.repo_id)
                api.create_repo(config.repo_id, token=config.token, private=config.private, repo_type="model",
                                exist_ok=config.mode == "any")
            reporter.progress(0.2, f"Uploading {len(names)} files ({size / 1e6:.1f} MB)")
            if reporter.should_stop():
                raise Cancelled()
            reporter.phase("uploading", f"{len(names)} files, {size / 1e6:.1f} MB")
            action = "upload to"
            commit = api.upload_folder(repo_id=config.repo_id, folder_path=staging, token=config.token,
                                       repo_type="model", commit_message=config.commit_message)
        except (HfHubHTTPError, *_network_errors()) as exc:
            message = hub_error_message(exc, endpoint=config.endpoint, repo_id=config.repo_id, action=action)
            if message is None:
                raise
            raise ReadableError(message) from exc
    url = f"{config.endpoint.rstrip('/')}/{config.repo_id}"
    reporter.log(f"Uploaded {len(names)} files to {url}")
    return {"repo_id": config.repo_id, "url": url, "commit_url": commit.commit_url, "files": names, "bytes": size,
            "private": config.private, "mode": config.mode}
