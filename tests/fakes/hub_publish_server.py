"""A small stand-in for the Hugging Face Hub's publishing side and its OAuth provider, on a free local port.

It speaks the HTTP protocol the real `huggingface_hub` client and a browser's OAuth redirects use, so tests run the
real client against it (pass `endpoint=server.url` to HfApi, or set the HF_ENDPOINT setting):

- `GET /api/whoami-v2`, `GET /api/models?author=`, `GET /api/models/{id}` (repo info)
- `POST /api/repos/create` (403 outside the caller's namespace, 409 when the name is taken)
- `POST /api/validate-yaml`, `POST /api/models/{id}/preupload/{rev}` (every file "regular"),
  `POST /api/models/{id}/commit/{rev}` (NDJSON with base64 files, stored in `repos[id]["files"]`)
- `GET /oauth/authorize` (signs in `oauth_user` at once and redirects back with a code and the same state),
  `POST /oauth/token` (authorization_code with PKCE S256, and refresh_token grants), `GET /oauth/userinfo`

`fail(pattern, status, headers=..., times=...)` makes matching requests fail, such as a 429 with Retry-After.
Only users added with `add_user` exist; tokens are opaque strings the server hands out or is given."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.local_server import LocalServer

CLIENT_ID = "garage-test-client"
CLIENT_SECRET = "garage-test-client-secret"


class HubPublishServer(LocalServer):
    PROTOCOL = "HTTP/1.1"

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET, access_ttl: int = 3600):
        super().__init__()
        self.client_id, self.client_secret, self.access_ttl = client_id, client_secret, access_ttl
        self.tokens: dict[str, dict] = {}  # access token -> {"user", "role", "expires" (epoch or None)}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> user name
        self.codes: dict[str, dict] = {}  # authorization code -> what it was issued for
        self.users: dict[str, dict] = {}  # name -> {"fullname", "orgs"}
        self.repos: dict[str, dict] = {}  # "owner/name" -> {"owner", "private", "files": {path: bytes}, "commits"}
        self.oauth_user: str | None = None  # who "signs in" on /oauth/authorize
        self.authorize_requests: list[dict] = []  # the query of each /oauth/authorize request
        self.requests: list[str] = []  # "METHOD path" of each request, in order
        self.yaml_validated: list[str] = []
        self._failures: list[dict] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ test helpers

    def add_user(self, name: str, *, token: str | None = None, role: str = "write", orgs=()) -> str:
        """Create a user with an access token (no expiry) and return the token."""
        self.users.setdefault(name, {"fullname": name.title(), "orgs": list(orgs)})
        token = token or f"hf_{secrets.token_urlsafe(24)}"
        self.tokens[token] = {"user": name, "role": role, "expires": None}
        return token

    def add_repo(self, repo_id: str, *, owner: str | None = None, private: bool = False, files: dict | None = None):
        self.repos[repo_id] = {"owner": owner or repo_id.split("/")[0], "private": private,
                               "files": dict(files or {}), "commits": []}

    def fail(self, pattern: str, status: int, *, headers: dict | None = None, times: int = 1, body: dict | None = None):
        """The next `times` requests whose "METHOD path" matches the regex `pattern` get `status` instead."""
        self._failures.append({"pattern": re.compile(pattern), "status": status, "headers": headers or {},
                               "times": times, "body": body or {"error": f"Failure {status} set by the test"}})

    def expire(self, token: str) -> None:
        """Make an access token expired, as the Hub does after its lifetime."""
        self.tokens[token]["expires"] = time.time() - 1

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()

    def file(self, repo_id: str, path: str) -> bytes:
        return self.repos[repo_id]["files"][path]

    # ----------------------------------------------------------------------------------------------- plumbing

    def _body(self, handler) -> bytes:
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _caller(self, handler) -> dict | None:
        """The user a Bearer token belongs to, if it is valid and not expired."""
        auth = handler.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        info = self.tokens.get(auth[7:].strip())
        if info is None or (info["expires"] is not None and info["expires"] < time.time()):
            return None
        return {"name": info["user"], "role": info["role"], **self.users[info["user"]]}

    def _unauthorized(self, handler):
        self._send(handler, 401, {"error": "Invalid credentials in Authorization header"})

    def _handle(self, handler):
        path, _, query = handler.path.partition("?")
        line = f"{handler.command} {path}"
        self.requests.append(line)
        body = self._body(handler) if handler.command == "POST" else b""
        with self._lock:
            for failure in self._failures:
                if failure["times"] > 0 and failure["pattern"].search(line):
                    failure["times"] -= 1
                    return self._send(handler, failure["status"], failure["body"], failure["headers"])
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        base = self.url
        if path.startswith("/oauth/"):
            return self._oauth(handler, path, params, body)
        if path == "/api/whoami-v2" and handler.command == "GET":
            caller = self._caller(handler)
            if caller is None:
                return self._unauthorized(handler)
            return self._send(handler, 200, {
                "type": "user", "id": hashlib.sha1(caller["name"].encode()).hexdigest()[:24], "name": caller["name"],
                "fullname": caller["fullname"], "orgs": [{"name": org, "type": "org"} for org in caller["orgs"]],
                "auth": {"type": "access_token", "accessToken": {"displayName": "garage", "role": caller["role"]}}})
        if path == "/api/models" and handler.command == "GET":
            caller = self._caller(handler)
            author = params.get("author")
            items = [self._model_info(repo_id, repo) for repo_id, repo in sorted(self.repos.items())
                     if (author is None or repo["owner"] == author)
                     and (not repo["private"] or (caller and caller["name"] == repo["owner"]))]
            return self._send(handler, 200, items)
        if path == "/api/repos/create" and handler.command == "POST":
            return self._create(handler, json.loads(body or b"{}"), base)
        if path == "/api/validate-yaml" and handler.command == "POST":
            self.yaml_validated.append(json.loads(body or b"{}").get("content", ""))
            return self._send(handler, 200, {"errors": [], "warnings": []})
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/(preupload|commit)/([^/]+))?", path)
        if match:
            return self._repo(handler, match.group(1), match.group(2), body, base)
        self._send(handler, 404, {"error": "Not implemented by the fake hub"})

    @staticmethod
    def _model_info(repo_id: str, repo: dict) -> dict:
        return {"_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
                "author": repo["owner"], "private": repo["private"], "downloads": 0, "likes": 0, "tags": [],
                "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": name} for name in sorted(repo["files"])],
                "sha": hashlib.sha1(repr(sorted(repo["files"])).encode()).hexdigest()}

    def _may_write(self, caller: dict, namespace: str) -> bool:
        return caller["role"] != "read" and (namespace == caller["name"] or namespace in caller["orgs"])

    def _create(self, handler, payload: dict, base: str):
        caller = self._caller(handler)
        if caller is None:
            return self._unauthorized(handler)
        namespace = payload.get("organization") or caller["name"]
        repo_id = f"{namespace}/{payload['name']}"
        if not self._may_write(caller, namespace):
            return self._send(handler, 403, {"error": f"You don't have the rights to create a model under the namespace \"{namespace}\""})
        if repo_id in self.repos:
            return self._send(handler, 409, {"error": "You already created this model repo", "url": f"{base}/{repo_id}"})
        # Newer clients send "visibility" ("public", "private" or "protected"); older ones a "private" flag.
        private = payload.get("visibility", "private" if payload.get("private") else "public") != "public"
        self.add_repo(repo_id, owner=namespace, private=private)
        return self._send(handler, 200, {"url": f"{base}/{repo_id}", "name": repo_id, "id": repo_id})

    def _repo(self, handler, repo_id: str, operation: str | None, body: bytes, base: str):
        caller = self._caller(handler)
        repo = self.repos.get(repo_id)
        visible = repo is not None and (not repo["private"] or (caller and caller["name"] == repo["owner"]))
        if not visible:
            return self._send(handler, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if operation is None:
            return self._send(handler, 200, self._model_info(repo_id, repo))
        if caller is None:
            return self._unauthorized(handler)
        if not self._may_write(caller, repo["owner"]):
            return self._send(handler, 403, {"error": "You don't have the rights to write to this repository"})
        if operation == "preupload":
            files = json.loads(body)["files"]
            return self._send(handler, 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                       for f in files]})
        summary = ""
        for raw in body.splitlines():
            item = json.loads(raw)
            if item["key"] == "header":
                summary = item["value"].get("summary", "")
            elif item["key"] == "file":
                repo["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                repo["files"].pop(item["value"]["path"], None)
            elif item["key"] == "lfsFile":
                return self._send(handler, 400, {"error": "LFS files are not supported by the fake hub"})
        oid = hashlib.sha1(json.dumps(sorted((k, hashlib.sha1(v).hexdigest()) for k, v in repo["files"].items())).encode()).hexdigest()
        repo["commits"].append({"summary": summary, "oid": oid})
        return self._send(handler, 200, {"commitUrl": f"{base}/{repo_id}/commit/{oid}", "commitOid": oid,
                                         "pullRequestUrl": None})

    # ------------------------------------------------------------------------------------------------- OAuth

    def _issue(self, user: str) -> dict:
        access, refresh = f"hf_oauth_{secrets.token_urlsafe(24)}", f"hf_refresh_{secrets.token_urlsafe(24)}"
        self.tokens[access] = {"user": user, "role": "write", "expires": time.time() + self.access_ttl}
        self.refresh_tokens[refresh] = user
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": self.access_ttl,
                "scope": "openid profile write-repos manage-repos"}

    def _client_ok(self, handler, form: dict) -> bool:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = handler.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        return client_id == self.client_id and secret == self.client_secret

    def _oauth(self, handler, path: str, params: dict, body: bytes):
        if path == "/oauth/authorize" and handler.command == "GET":
            self.authorize_requests.append(params)
            if params.get("client_id") != self.client_id or not params.get("redirect_uri"):
                return self._send(handler, 400, b"Unknown client", content_type="text/plain")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"user": self.oauth_user, "redirect_uri": params["redirect_uri"],
                                "challenge": params.get("code_challenge"), "method": params.get("code_challenge_method")}
            back = {"code": code, **({"state": params["state"]} if "state" in params else {})}
            separator = "&" if urlsplit(params["redirect_uri"]).query else "?"
            handler.send_response(302)
            handler.send_header("Location", f"{params['redirect_uri']}{separator}{urlencode(back)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        if path == "/oauth/token" and handler.command == "POST":
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            if not self._client_ok(handler, form):
                return self._send(handler, 401, {"error": "invalid_client"})
            if form.get("grant_type") == "authorization_code":
                issued = self.codes.pop(form.get("code", ""), None)
                if issued is None or issued["redirect_uri"] != form.get("redirect_uri"):
                    return self._send(handler, 400, {"error": "invalid_grant"})
                if issued["challenge"]:
                    verifier = form.get("code_verifier", "")
                    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                    if digest != issued["challenge"]:
                        return self._send(handler, 400, {"error": "invalid_grant", "error_description": "PKCE failed"})
                return self._send(handler, 200, self._issue(issued["user"]))
            if form.get("grant_type") == "refresh_token":
                user = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
                if user is None:
                    return self._send(handler, 400, {"error": "invalid_grant"})
                return self._send(handler, 200, self._issue(user))
            return self._send(handler, 400, {"error": "unsupported_grant_type"})
        if path == "/oauth/userinfo" and handler.command == "GET":
            caller = self._caller(handler)
            if caller is None:
                return self._unauthorized(handler)
            return self._send(handler, 200, {"sub": hashlib.sha1(caller["name"].encode()).hexdigest()[:24],
                                             "name": caller["fullname"], "preferred_username": caller["name"],
                                             "profile": f"{self.url}/{caller['name']}"})
        return self._send(handler, 404, {"error": "Not implemented by the fake hub"})
