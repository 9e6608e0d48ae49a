"""The outbound guard (workers/common/outbound.py) with real sockets: real HTTP(S) servers on loopback addresses, the real
httpx client, and a resolver of our own only where a test plays a DNS server."""
import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from workers.common import outbound
from workers.common.errors import ReadableError
from workers.common.llm import ChatClient, LLMError
from workers.common.outbound import AllowList, GuardedTransport, OutboundRefused, check_url, forbidden_reason

LOOPBACK_RANGES = ["127.0.0.0/8", "::1"]


class Server:
    """A real HTTP server on one address that answers 200 and records the Host header of every request."""

    def __init__(self, host="127.0.0.1", port=0, tls: ssl.SSLContext | None = None):
        hosts = self.hosts = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hosts.append(self.headers.get("Host"))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.close()


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer these names from `answers` (each lookup takes the next answer; the last one repeats) and every other
    name as the system does. Returns the names looked up, in order."""
    real, asked = outbound._getaddrinfo, []

    def getaddrinfo(host, port):
        asked.append(host)
        if host not in answers:
            return real(host, port)
        queue = answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = 10 if ":" in address else 2
        return [(family, 1, 6, "", (address, port))]

    monkeypatch.setattr(outbound, "_getaddrinfo", getaddrinfo)
    return asked


def get(url, allowed, **kwargs):
    with httpx.Client(transport=GuardedTransport(allowed=allowed, **kwargs), trust_env=False, timeout=5) as client:
        return client.get(url)


def test_it_refuses_a_name_resolving_to_loopback_unless_the_range_is_allowed(server, monkeypatch):
    fake_dns(monkeypatch, {"ollama.test": ["127.0.0.1"]})
    url = f"http://ollama.test:{server.port}/v1/models"
    with pytest.raises(OutboundRefused) as refused:
        get(url, allowed=[])
    assert "loopback" in str(refused.value) and "GARAGE_ALLOWED_ENDPOINTS" in str(refused.value)
    assert server.hosts == []  # nothing was sent
    assert get(url, allowed=["127.0.0.0/8"]).status_code == 200
    assert get(url, allowed="ollama.test").status_code == 200  # or the name itself
    assert server.hosts == [f"ollama.test:{server.port}"] * 2  # the Host header keeps the name


@pytest.mark.parametrize("host", ["169.254.169.254", "[::1]", "10.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0",
                                  "2130706433", "[::ffff:a9fe:a9fe]", "100.64.0.1", "192.168.1.1", "[fe80::1]",
                                  "[fd00::1]", "224.0.0.1", "[2002:7f00:1::]", "[64:ff9b::a9fe:a9fe]", "localhost"])
def test_it_refuses_every_spelling_of_a_private_address(server, host):
    with pytest.raises(OutboundRefused, match="GARAGE_ALLOWED_ENDPOINTS"):
        get(f"http://{host}:{server.port}/", allowed=[])
    with pytest.raises(OutboundRefused):
        check_url(f"http://{host}:{server.port}/v1", allowed=[])
    assert server.hosts == []


def test_it_reaches_loopback_spellings_once_allowed(server):
    # The same spellings that are refused above do lead to this machine: the refusal is what keeps them out.
    for host in ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]"]:
        assert get(f"http://{host}:{server.port}/", allowed=LOOPBACK_RANGES).status_code == 200, host
    assert len(server.hosts) == 3


def test_it_connects_to_the_address_it_checked_not_a_later_answer(monkeypatch):
    """DNS rebinding: the name first resolves to an allowed address (a stand-in for a public one, which tests cannot
    reach), then to a forbidden one. The connection goes to the first: the name is never resolved again."""
    checked, forbidden = Server("127.0.0.2"), None
    try:
        forbidden = Server("127.0.0.1", port=checked.port)
        asked = fake_dns(monkeypatch, {"rebind.test": ["127.0.0.2", "127.0.0.1"]})
        response = get(f"http://rebind.test:{checked.port}/", allowed=["127.0.0.2/32"])
        assert response.status_code == 200
        assert checked.hosts == [f"rebind.test:{checked.port}"] and forbidden.hosts == []
        assert asked == ["rebind.test"]
        with pytest.raises(OutboundRefused):  # a new connection asks again, and the new answer is refused
            get(f"http://rebind.test:{checked.port}/", allowed=["127.0.0.2/32"])
        assert forbidden.hosts == []
    finally:
        checked.close()
        if forbidden:
            forbidden.close()


def test_it_refuses_a_name_with_one_public_and_one_private_address(server, monkeypatch):
    fake_dns(monkeypatch, {"mixed.test": ["93.184.216.34"]})
    real = outbound._getaddrinfo
    monkeypatch.setattr(outbound, "_getaddrinfo",
                        lambda host, port: [*real(host, port), (2, 1, 6, "", ("127.0.0.1", port))])
    with pytest.raises(OutboundRefused):
        get(f"http://mixed.test:{server.port}/", allowed=[])
    assert server.hosts == []


def _certificate(tmp_path, name: str):
    """A self-signed certificate for `name` only (no IP address in it), and a client context trusting it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    return server_context, client_context


def test_it_keeps_tls_on_the_host_name(tmp_path, monkeypatch):
    server_context, client_context = _certificate(tmp_path, "models.test")
    tls = Server(tls=server_context)
    try:
        fake_dns(monkeypatch, {"models.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
        # The certificate names models.test, not 127.0.0.1: this succeeds only if SNI and the check use the name.
        response = get(f"https://models.test:{tls.port}/", allowed=LOOPBACK_RANGES, verify=client_context)
        assert response.status_code == 200 and tls.hosts == [f"models.test:{tls.port}"]
        with pytest.raises(httpx.ConnectError):  # and the check is real: another name at that address fails it
            get(f"https://other.test:{tls.port}/", allowed=LOOPBACK_RANGES, verify=client_context)
    finally:
        tls.close()


def test_it_gives_the_chat_client_a_readable_error_without_retrying(chat_server):
    with ChatClient(chat_server.url, model=chat_server.model, max_retries=3,
                    transport=GuardedTransport(allowed=[])) as client:
        result = client.call([{"role": "user", "content": "Hi"}])
        with pytest.raises(LLMError, match="GARAGE_ALLOWED_ENDPOINTS"):
            client.complete([{"role": "user", "content": "Hi"}])
    assert not result.ok and result.attempts == 1 and "loopback" in result.error
    assert chat_server.chat_requests == []


def test_it_reads_the_allow_list_at_each_connection(server):
    allowed = []
    with httpx.Client(transport=GuardedTransport(allowed=lambda: allowed), trust_env=False) as client:
        with pytest.raises(OutboundRefused):
            client.get(f"http://127.0.0.1:{server.port}/")
        allowed.append("127.0.0.1")
        assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 200


def test_it_leaves_public_and_unresolvable_urls_to_the_check_at_connection():
    assert check_url("https://93.184.216.34/v1", allowed=[]) == ["93.184.216.34"]
    assert check_url("http://no-such-host.invalid/v1", allowed=[]) is None


def test_it_parses_the_allow_list_and_refuses_malformed_ranges():
    rules = AllowList.parse("LocalHost., [::1], 10.1.2.0/24 ,,")
    assert rules.hosts == {"localhost"} and rules.permits_host("localhost") and rules.permits_host("[LOCALHOST]")
    assert rules.permits_address(ipaddress.ip_address("10.1.2.3"))
    assert rules.permits_address(ipaddress.ip_address("::1"))
    assert rules.permits_address(ipaddress.ip_address("::ffff:10.1.2.3"))  # a mapped address matches its IPv4 range
    assert not rules.permits_address(ipaddress.ip_address("10.1.3.1"))
    with pytest.raises(ReadableError, match="GARAGE_ALLOWED_ENDPOINTS"):
        AllowList.parse("10.0.0.0/33")


def test_it_names_why_an_address_is_refused():
    assert forbidden_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert forbidden_reason(ipaddress.ip_address("2606:4700::1111")) is None
    assert "link-local" in forbidden_reason(ipaddress.ip_address("169.254.169.254"))
    assert "loopback" in forbidden_reason(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert "unspecified" in forbidden_reason(ipaddress.ip_address("::"))
    assert "reserved" in forbidden_reason(ipaddress.ip_address("100.64.0.1"))  # shared (carrier-grade NAT)
