"""Web hardening: the request size bound, rate limits of the API, /v1 and the playground, the Content-Security-Policy,
the SECRET_KEY file and the HTTPS defaults. With real parts: a live uvicorn server, raw sockets, Redis."""
import asyncio
import json
import os
import re
import select
import socket
import stat
import subprocess
import sys
import uuid

import httpx
import openai
import pytest
from django.urls import reverse
from websockets.sync.client import connect

from apps.accounts.throttling import throttle_wait
from tests.factories import ApiTokenFactory
from tests.live import ROOT, asgi_server, child_env

LIMIT = 2_000_000  # the live server's GARAGE_MAX_REQUEST_BYTES
UPLOAD_LIMIT = 1_500_000
CACHE_PREFIX = f"test-security-{uuid.uuid4().hex}"  # the live server's rate-limit counters, apart from other tests'


@pytest.fixture(scope="module")
def limited_server(django_db_setup):
    """The ASGI server with a small request bound and low /v1 and playground rates."""
    with asgi_server(GARAGE_MAX_REQUEST_BYTES=LIMIT, GARAGE_MAX_UPLOAD_BYTES=UPLOAD_LIMIT, CACHE_PREFIX=CACHE_PREFIX,
                     GARAGE_THROTTLE_OPENAI="3/min", GARAGE_THROTTLE_PLAYGROUND="2/min") as url:
        yield url


def _address(url):
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _response(sock, timeout=10) -> tuple[int, dict, str]:
    """Status, headers and body of the HTTP response waiting on the socket."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
            re.search(rb"(?i)content-length: *(\d+)", data).group(1) if re.search(rb"(?i)content-length", data) else 0):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body.decode()


# --- the request size bound (item 5) -------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_declared_oversize_body_without_reading_it(limited_server):
    with socket.create_connection(_address(limited_server)) as sock:
        sock.sendall(b"POST /api/v1/datasets/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 100000000\r\n\r\n")  # 100 MB announced, not a byte of it sent
        status, headers, body = _response(sock)
    assert status == 413 and headers["connection"] == "close"
    assert body == "The request is too large: this server accepts at most 1.9\xa0MB in one request. Send a smaller file.\n"


@pytest.mark.django_db(transaction=True)
def test_it_stops_reading_a_chunked_body_at_the_limit(limited_server):
    piece = b"x" * 65536
    sent = 0
    with socket.create_connection(_address(limited_server)) as sock:
        sock.sendall(b"POST /api/v1/datasets/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        # Up to twice the limit, and never the last chunk: an answer can only come from a server that stopped reading.
        while sent < 2 * LIMIT and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        status, _, body = _response(sock)
    assert status == 413 and body.startswith("The request is too large")
    assert sent <= LIMIT + 2 * 1024 * 1024  # what sat in socket buffers when the server answered


@pytest.mark.django_db(transaction=True)
def test_it_still_takes_uploads_up_to_the_upload_limit(limited_server, alice):
    from apps.datasets.services import dataset_create

    dataset = dataset_create(owner=alice, name="Notes")
    ApiTokenFactory(owner=alice, secret=(secret := "gg_" + "s" * 40))
    with httpx.Client(base_url=limited_server, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
        url = f"/api/v1/datasets/{dataset.code}/documents/"
        text = ("The valley has a river. " * 60_000)[:UPLOAD_LIMIT - 1000].encode()
        response = http.post(url, files={"file": ("notes.txt", text, "text/plain")})
        assert response.status_code == 201, response.text
        # Over the upload limit, under the request bound: the upload's own readable refusal.
        response = http.post(url, files={"file": ("big.txt", b"y" * (UPLOAD_LIMIT + 100_000), "text/plain")})
        assert response.status_code == 400 and "MB" in response.json()["message"]
    assert dataset.documents.count() == 1


def test_it_bounds_the_body_before_django_reads_it(settings):
    """The middleware with real ASGI messages around the real application: the application never pulls more than the
    limit (and one message) from an endless body."""
    from garage.asgi import application

    settings.GARAGE_MAX_REQUEST_BYTES = 1_000_000
    piece = b"z" * 65536

    async def post(messages_available):
        pulled, sent = 0, []

        async def receive():
            nonlocal pulled
            if pulled >= messages_available * len(piece):
                return {"type": "http.disconnect"}
            pulled += len(piece)
            return {"type": "http.request", "body": piece, "more_body": True}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/api/v1/datasets/", "raw_path": b"/api/v1/datasets/", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"localhost"), (b"transfer-encoding", b"chunked")],
                 "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80)}
        await application(scope, receive, send)
        return pulled, sent

    pulled, sent = asyncio.run(post(messages_available=1000))  # 65 MB on offer
    assert sent[0]["status"] == 413 and b"too large" in sent[1]["body"]
    assert pulled <= 1_000_000 + len(piece)


# --- rate limits (item 10) -------------------------------------------------------------------------------------------

@pytest.fixture
def rates(settings, fresh_throttles):
    def lower(**changed):
        settings.GARAGE_THROTTLE_RATES = {**settings.GARAGE_THROTTLE_RATES, **changed}
    return lower


@pytest.mark.django_db
def test_it_limits_the_rest_api_per_user(alice_api, bob_api, rates):
    rates(api="3/min")
    for _ in range(3):
        assert alice_api.get("/api/v1/me/").status_code == 200
    response = alice_api.get("/api/v1/me/")
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60
    assert response.json()["message"].startswith("Request was throttled. Expected available in")
    assert bob_api.get("/api/v1/me/").status_code == 200  # per user


@pytest.mark.django_db
def test_it_limits_anonymous_api_requests_per_address(client, rates):
    rates(api_anon="2/min")
    for _ in range(2):
        assert client.get("/api/v1/docs/", REMOTE_ADDR="10.1.0.1").status_code == 200
    response = client.get("/api/v1/docs/", REMOTE_ADDR="10.1.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert client.get("/api/v1/docs/", REMOTE_ADDR="10.1.0.2").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_it_limits_the_openai_endpoint_per_user(limited_server, alice, bob):
    ApiTokenFactory(owner=alice, secret=(alice_key := "gg_" + "a" * 40))
    ApiTokenFactory(owner=bob, secret=(bob_key := "gg_" + "b" * 40))
    with httpx.Client(base_url=f"{limited_server}/v1", headers={"Authorization": f"Bearer {alice_key}"}) as http:
        for _ in range(3):
            assert http.get("/models").status_code == 200
        response = http.get("/models")
    assert response.status_code == 429 and 0 < int(response.headers["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert response.json()["error"]["message"].startswith("Too many requests. Try again in")
    # OpenAI's client knows this answer for what it is.
    with pytest.raises(openai.RateLimitError):
        openai.OpenAI(base_url=f"{limited_server}/v1", api_key=alice_key, max_retries=0).models.list()
    bob_models = openai.OpenAI(base_url=f"{limited_server}/v1", api_key=bob_key, max_retries=0).models.list()
    assert bob_models.object == "list"


@pytest.mark.django_db(transaction=True)
def test_it_limits_playground_prompts_per_user(limited_server, alice, session_cookie, settings):
    from tests.playground.conftest import make_finetune

    finetune = make_finetune(alice, None, finished=False)
    finetune.artifact = f"{finetune.code}/adapter.zip"  # ready as far as the page is concerned; no worker runs here
    finetune.save()
    # Two prompts already sent this minute, counted in the live server's cache (same Redis, same key prefix).
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": CACHE_PREFIX}}
    settings.GARAGE_THROTTLE_RATES = {**settings.GARAGE_THROTTLE_RATES, "playground": "2/min"}
    for _ in range(2):
        assert throttle_wait(scope="playground", ident=f"user:{alice.pk}") is None

    url = f"{limited_server.replace('http', 'ws', 1)}/ws/playground/?model={finetune.code}"
    headers = {"Origin": limited_server, "Cookie": f"sessionid={session_cookie(alice)}"}
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        ws.send(json.dumps({"type": "generate", "column": 0, "messages": [{"role": "user", "content": "Hi"}]}))
        message = json.loads(ws.recv(timeout=10))
    assert message["type"] == "error" and message["column"] == 0 and 0 < message["retry_after"] <= 60
    assert message["message"].startswith("Too many prompts. Try again in")


# --- Content-Security-Policy (item 13) ------------------------------------------------------------------------------

def _policy(response) -> dict:
    return {d.split()[0]: d.split()[1:] for d in response["Content-Security-Policy"].split("; ")}


@pytest.mark.django_db
def test_it_sends_a_content_security_policy_with_a_fresh_nonce(client, settings):
    settings.FIREBASE_PROJECT_ID = ""
    first, second = client.get(reverse("accounts:login")), client.get(reverse("accounts:login"))
    policy = _policy(first)
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["connect-src"] == ["'self'"]
    nonce = policy["script-src"][1]
    assert policy["script-src"] == ["'self'", nonce] and nonce.startswith("'nonce-")
    assert nonce != _policy(second)["script-src"][1]
    assert "gstatic" not in first["Content-Security-Policy"]
    # API answers carry it too.
    assert "default-src 'self'" in client.get("/api/v1/me/")["Content-Security-Policy"]


@pytest.mark.django_db
def test_it_lets_the_firebase_sdk_and_the_nonced_sign_in_script_run(client, settings, monkeypatch):
    settings.FIREBASE_PROJECT_ID = "demo-garage"
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    response = client.get(reverse("accounts:login"))
    policy = _policy(response)
    assert "https://www.gstatic.com" in policy["script-src"]
    assert {"https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com"} <= set(policy["connect-src"])
    nonce = policy["script-src"][1].removeprefix("'nonce-").removesuffix("'")
    page = response.content.decode()
    assert f'<script type="module" nonce="{nonce}">' in page
    # Every script of the page is a file of this server, data, or carries the nonce.
    for tag in re.findall(r"<script[^>]*>", page):
        assert "src=" in tag or "application/json" in tag or f'nonce="{nonce}"' in tag, tag
    assert " onclick=" not in page and " onsubmit=" not in page


@pytest.mark.django_db
def test_it_puts_the_nonce_on_the_api_docs_inline_script(alice_client):
    response = alice_client.get("/api/v1/docs/")
    nonce = _policy(response)["script-src"][1].removeprefix("'nonce-").removesuffix("'")
    page = response.content.decode()
    inline = [tag for tag in re.findall(r"<script[^>]*>", page) if "src=" not in tag]
    assert inline == [f'<script nonce="{nonce}">']
    assert "fonts.googleapis.com" not in alice_client.get("/api/v1/redoc/").content.decode()


# --- SECRET_KEY file and HTTPS defaults (item 13) --------------------------------------------------------------------

def _settings_in_a_new_process(tmp_path, names, **env):
    """Settings as a freshly started process reads them from this environment."""
    environment = {k: v for k, v in child_env().items() if k not in ("SECRET_KEY", "GARAGE_HTTPS", "SECURE_COOKIES",
                                                                     "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT")}
    environment.update(GARAGE_VAR_DIR=str(tmp_path), DEBUG="false", **env)
    code = f"import json, garage.settings as s; print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                            timeout=60, preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_creates_the_secret_key_file_readable_by_its_owner_only(tmp_path):
    key = _settings_in_a_new_process(tmp_path, ["SECRET_KEY"])["SECRET_KEY"]
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) > 50 and path.read_text() == key
    assert _settings_in_a_new_process(tmp_path, ["SECRET_KEY"])["SECRET_KEY"] == key  # kept across restarts
    assert not list(tmp_path.glob(".secret_key.*"))


def test_it_narrows_a_secret_key_file_left_readable_by_others(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("an older key")
    path.chmod(0o644)
    assert _settings_in_a_new_process(tmp_path, ["SECRET_KEY"])["SECRET_KEY"] == "an older key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


HTTPS_SETTINGS = ["SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS"]


def test_it_turns_on_secure_cookies_hsts_and_the_redirect_with_one_switch(tmp_path):
    assert _settings_in_a_new_process(tmp_path, HTTPS_SETTINGS, SECRET_KEY="k") == {
        "SECURE_SSL_REDIRECT": False, "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0}
    assert _settings_in_a_new_process(tmp_path, HTTPS_SETTINGS, SECRET_KEY="k", GARAGE_HTTPS="true") == {
        "SECURE_SSL_REDIRECT": True, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000}
    # The older variables still decide each on its own.
    assert _settings_in_a_new_process(tmp_path, HTTPS_SETTINGS, SECRET_KEY="k", GARAGE_HTTPS="true",
                                      SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="300") == {
        "SECURE_SSL_REDIRECT": False, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 300}
    assert _settings_in_a_new_process(tmp_path, HTTPS_SETTINGS[1:3], SECRET_KEY="k", SECURE_COOKIES="true") == {
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True}


def test_it_explains_a_malformed_rate(tmp_path):
    environment = dict(child_env(), GARAGE_VAR_DIR=str(tmp_path), SECRET_KEY="k", GARAGE_THROTTLE_API="lots")
    result = subprocess.run([sys.executable, "-c", "import garage.settings"], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "GARAGE_THROTTLE_API='lots' is not a rate: write it as a count per period, such as \"120/min\"." in result.stderr
