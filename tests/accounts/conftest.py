"""Firebase fixtures: everything runs offline.

Two ways to get a token firebase-admin accepts without the network:
- emulator mode (FIREBASE_AUTH_EMULATOR_HOST set), where firebase-admin accepts unsigned tokens;
- real RS256 tokens signed with a key made here, whose certificate firebase-admin receives in place
  of Google's (google-auth's certificate fetch is replaced; nothing else is).
Either way firebase-admin then asks the Identity Toolkit API whether the user's tokens were revoked: a
local HTTP server answers it (FakeIdentityToolkit), at the emulator's address or at Google's API
address, which is pointed at it, with a service-account key whose token endpoint it also serves.
"""
import base64
import datetime
import ipaddress
import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import firebase_admin
import firebase_admin._user_mgt
import google.oauth2.id_token
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from apps.accounts.firebase import APP_NAME

FIREBASE_PROJECT = "demo-garage"
KEY_ID = "test-key-1"
GOOGLE_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"


def _is_local(address) -> bool:
    if not isinstance(address, tuple):
        return True  # a unix socket path
    host = str(address[0]).split("%")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def network_attempts(monkeypatch):
    """Refuses and records every connection to, or name lookup of, anything but this machine; the test
    fails if any was tried.

    Loopback stays open because the test database (PostgreSQL) and Redis may listen there.
    """
    attempts = []

    def guard(real):
        def connect(sock, address):
            if not _is_local(address):
                attempts.append(address)
                raise OSError(f"Tests may not use the network (tried {address}).")
            return real(sock, address)
        return connect

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        # Name lookups are refused too: offline, a lookup fails before any connect() could be seen.
        if host is not None and not _is_local((host if isinstance(host, str) else host.decode(), port)):
            attempts.append((host, port))
            raise socket.gaierror(f"Tests may not use the network (looked up {host}).")
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert attempts == [], f"Network connections were attempted: {attempts}"


@pytest.fixture
def firebase_enabled(settings, network_attempts):
    """Firebase on for this test, with no service-account file; the firebase-admin app is removed afterwards."""
    settings.FIREBASE_PROJECT_ID = FIREBASE_PROJECT
    settings.FIREBASE_CREDENTIALS_FILE = ""
    settings.FIREBASE_API_KEY = "test-api-key"
    settings.FIREBASE_AUTH_DOMAIN = ""
    yield
    try:
        firebase_admin.delete_app(firebase_admin.get_app(APP_NAME))
    except ValueError:
        pass  # the test never built one


class FakeIdentityToolkit:
    """The two Google endpoints firebase-admin calls to check for revocation, on 127.0.0.1: the OAuth token
    endpoint of a service account (POST /token) and the Identity Toolkit's user lookup (POST …/accounts:lookup).

    Every user exists, is enabled and has never had tokens revoked, unless a test says otherwise.
    """

    ACCESS_TOKEN = "fake-access-token"

    def __init__(self):
        self.revoked_at: dict[str, int] = {}  # uid -> seconds since the epoch; tokens issued before are revoked
        self.disabled: set[str] = set()
        self.deleted: set[str] = set()
        self.lookups: list[dict] = []  # {"uid": …, "authorization": …} of each lookup
        self.url = ""

    def revoke(self, uid: str) -> None:
        """As firebase-admin's revoke_refresh_tokens does: tokens issued before now are no longer valid."""
        self.revoked_at[uid] = int(time.time()) + 1

    def _answer(self, path: str, body: dict, authorization: str) -> dict:
        if path.endswith("/token"):
            return {"access_token": self.ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}
        if path.endswith(f"/projects/{FIREBASE_PROJECT}/accounts:lookup"):
            uid = (body.get("localId") or [""])[0]
            self.lookups.append({"uid": uid, "authorization": authorization})
            if uid in self.deleted:
                return {"kind": "identitytoolkit#GetAccountInfoResponse"}
            return {"users": [{"localId": uid, "disabled": uid in self.disabled,
                               "validSince": str(self.revoked_at.get(uid, 0))}]}
        raise LookupError(path)

    @contextmanager
    def running(self):
        toolkit = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw.startswith(b"{") else {}
                    payload, status = toolkit._answer(self.path, body, self.headers.get("Authorization", "")), 200
                except LookupError:
                    payload, status = {"error": {"code": 404, "message": "NOT_FOUND"}}, 404
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture
def identity_toolkit():
    with FakeIdentityToolkit().running() as toolkit:
        yield toolkit


@pytest.fixture
def firebase_emulator(monkeypatch, firebase_enabled, identity_toolkit):
    """Emulator mode, with the emulator's user lookup answered by the fake Identity Toolkit."""
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", identity_toolkit.host)
    return identity_toolkit


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def firebase_claims(*, uid, email, email_verified=True, project=FIREBASE_PROJECT, expires_in=3600, **extra) -> dict:
    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": uid, "user_id": uid,
        "iat": now - 5, "auth_time": now - 5, "exp": now + expires_in,
        "email": email, "email_verified": email_verified,
        "firebase": {"sign_in_provider": "password", "identities": {"email": [email]}},
    }
    claims.update(extra)
    return {key: value for key, value in claims.items() if value is not None}


def emulator_token(*, uid="firebase-dana", email="dana@example.com", **claims) -> str:
    """An unsigned token, as the Firebase Auth emulator issues them."""
    return _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(firebase_claims(uid=uid, email=email, **claims)) + "."


@dataclass
class SigningKey:
    private_pem: bytes
    certificate_pem: str

    def sign(self, *, uid="firebase-dana", email="dana@example.com", kid=KEY_ID, **claims) -> str:
        """An RS256 token shaped like the ones Firebase issues."""
        return jwt.encode(firebase_claims(uid=uid, email=email, **claims), self.private_pem,
                          algorithm="RS256", headers={"kid": kid})


def _new_signing_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return SigningKey(private_pem, certificate.public_bytes(serialization.Encoding.PEM).decode())


@pytest.fixture(scope="session")
def google_key() -> SigningKey:
    """Stands in for Google's signing key: its certificate is what firebase-admin checks signatures with."""
    return _new_signing_key()


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    """A key Google never published: tokens signed with it must be refused."""
    return _new_signing_key()


@pytest.fixture
def service_account(settings, monkeypatch, tmp_path, firebase_enabled, identity_toolkit, google_key):
    """A service-account key file, as the Firebase console gives them, whose OAuth token endpoint is the fake's;
    Google's Identity Toolkit address is pointed at the fake too."""
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": FIREBASE_PROJECT, "private_key_id": "test-key",
        "private_key": google_key.private_pem.decode(), "client_email": f"garage@{FIREBASE_PROJECT}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{identity_toolkit.url}/token",
    }))
    settings.FIREBASE_CREDENTIALS_FILE = str(path)
    monkeypatch.setattr(firebase_admin._user_mgt.UserManager, "ID_TOOLKIT_URL", f"{identity_toolkit.url}/v1")
    return identity_toolkit


@pytest.fixture
def google_certs(monkeypatch, firebase_enabled, google_key, service_account):
    """Real signature checking, with google_key's certificate served in place of Google's.

    Returns the list of certificate URLs firebase-admin asked for.
    """
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    fetched = []

    def fetch_certs(request, url):
        fetched.append(url)
        return {KEY_ID: google_key.certificate_pem}

    monkeypatch.setattr(google.oauth2.id_token, "_fetch_certs", fetch_certs)
    return fetched
