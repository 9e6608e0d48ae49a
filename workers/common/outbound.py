"""The one guard for requests this server sends to addresses that users chose (server-side request forgery).

A user who may save a chat endpoint, a judge or a Hub address could otherwise make the web process or a worker
talk to this machine itself (`127.0.0.1`, `[::1]`, `0.0.0.0`), to the cloud's metadata service (`169.254.169.254`)
or to anything on the private network behind it. So, before a connection is opened, its host is resolved once and
every address it resolves to is checked: loopback, link-local, private, shared, reserved, multicast and
unspecified addresses (IPv4, IPv6, and IPv4 addresses wrapped in IPv6) are refused unless an administrator's
allow-list (the setting GARAGE_ALLOWED_ENDPOINTS: host names and CIDR ranges) permits the host name or the address.

The connection then goes to exactly the addresses that were checked: the name is not resolved a second time, so
a DNS answer that changes between the check and the connection (DNS rebinding) cannot lead anywhere else. The
check sits in an httpcore network backend, the layer that opens sockets, so the URL keeps its host name: the Host
header, TLS SNI and the certificate check all stay on the name the user gave, and the connection pool keeps
connections apart by name.

Engine code, no Django:

    transport = GuardedTransport(allowed=["localhost", "127.0.0.0/8", "::1"])   # or a callable returning them
    httpx.Client(transport=transport, trust_env=False)       # an environment proxy would go around the transport
    check_url("http://10.0.0.1/v1", allowed=[])              # raises OutboundRefused: for validating a saved URL
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from workers.common.errors import ReadableError

SETTING = "GARAGE_ALLOWED_ENDPOINTS"
# What `garage run` allows when the setting is not given: one person's machine runs its own Ollama or vLLM there.
LOOPBACK = ("localhost", "127.0.0.0/8", "::1")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits; a gateway would connect to that one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(ReadableError):
    """A request to an address this server does not contact. The message is readable and names the setting."""


@dataclass(frozen=True)
class AllowList:
    """Host names and networks an administrator allows even though they are not public internet addresses."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: str | Iterable[str]) -> AllowList:
        """From "localhost,127.0.0.0/8,::1" or a list of such entries. An address or CIDR is a network, anything
        else a host name (matched exactly, case-insensitively). A malformed CIDR raises ReadableError."""
        if isinstance(entries, str):
            entries = entries.split(",")
        hosts, networks = set(), []
        for entry in entries:
            entry = str(entry).strip().strip("[]").rstrip(".").lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or ":" in entry:
                    raise ReadableError(f"The setting {SETTING} has an entry that is neither a host name nor an "
                                        f"address range: “{entry[:100]}”. Use names such as localhost and ranges "
                                        "such as 10.0.0.0/8, separated by commas.") from None
                hosts.add(entry)
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def permits_host(self, host: str) -> bool:
        return _plain_host(host) in self.hosts

    def permits_address(self, address: Address) -> bool:
        return any(candidate.version == network.version and candidate in network
                   for candidate in _candidates(address) for network in self.networks)


Allowed = AllowList | str | Iterable[str] | Callable[[], "AllowList | str | Iterable[str]"]


def allow_list(allowed: Allowed) -> AllowList:
    """An AllowList from what callers hold: an AllowList, entries, or a callable returning either (read at each
    check, so a long-lived client follows a changed setting)."""
    if callable(allowed):
        allowed = allowed()
    return allowed if isinstance(allowed, AllowList) else AllowList.parse(allowed or ())


def _plain_host(host: str) -> str:
    return (host or "").strip().strip("[]").rstrip(".").lower()


def _candidates(address: Address) -> list[Address]:
    """The address and any IPv4 address wrapped inside it (mapped, 6to4, Teredo, NAT64), each checked on its own:
    the connection may well end up at the wrapped one."""
    found = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            found.append(address.ipv4_mapped)
        if address.sixtofour:
            found.append(address.sixtofour)
        if address.teredo:
            found.extend(address.teredo)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


# Why an address is refused, most specific first; an address that is none of these but still not global is reserved.
_REASONS = (
    ("is_unspecified", "an unspecified address (0.0.0.0 or ::, which means this machine)"),
    ("is_loopback", "a loopback address (this machine itself)"),
    ("is_link_local", "a link-local address (such as a cloud metadata service)"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private network address"),
    ("is_reserved", "a reserved address, not on the public internet"),
)


def forbidden_reason(address: Address) -> str | None:
    """Why an address is not contacted without the allow-list ("a loopback address", ...), or None for a public one."""
    candidates = _candidates(address)
    for attribute, reason in _REASONS:
        if any(getattr(candidate, attribute) for candidate in candidates):
            return reason
    if not all(candidate.is_global for candidate in candidates):
        return _REASONS[-1][1]
    return None


def _getaddrinfo(host: str, port: int) -> list:
    """The system resolver (tests replace this one function to play a DNS server that changes its answer)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve_checked(host: str, port: int, allowed: Allowed) -> list[str]:
    """Resolve `host` once and check every address it resolves to; return those addresses, which are the only
    ones the connection may use. Raises OutboundRefused when any address is forbidden and not allowed (a name that
    resolves to one public and one private address is refused: its owner controls which one a client picks), and
    socket.gaierror when the name does not resolve."""
    name = _plain_host(host)
    addresses = list(dict.fromkeys(info[4][0] for info in _getaddrinfo(name, port)))
    if not addresses:
        raise socket.gaierror(f"{name} has no address")
    rules = allow_list(allowed)
    if rules.permits_host(name):
        return addresses
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 link-local address may carry a zone
        reason = forbidden_reason(address)
        if reason and not rules.permits_address(address):
            raise OutboundRefused(f"This server does not send requests to “{name[:100]}”: it is {reason}. If that "
                                  f"is intended, an administrator can allow it in the setting {SETTING} (host names "
                                  "or address ranges, separated by commas).")
    return addresses


def check_url(url: str, allowed: Allowed) -> list[str] | None:
    """Check the host of a URL being saved, so that a forbidden one is refused when it is entered rather than when
    it is used. Returns the checked addresses, or None when the name does not resolve right now (it may later; the
    check before every connection still applies). Raises OutboundRefused."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 80
    try:
        return resolve_checked(parts.hostname, port, allowed)
    except (socket.gaierror, UnicodeError):
        return None


class _GuardedBackend:
    """An httpcore (or httpcore2) network backend: resolve and check the host, then connect to a checked address,
    trying the next one when a connection is refused."""

    def __init__(self, core, allowed: Allowed):
        self._core = core
        self._inner = core.SyncBackend()
        self._allowed = allowed

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None):
        try:
            addresses = resolve_checked(host, port, self._allowed)
        except (socket.gaierror, UnicodeError) as exc:
            raise self._core.ConnectError(f"Could not resolve {host}: {exc}") from None
        error = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except self._core.ConnectError as exc:
                error = exc
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise OutboundRefused("This server does not send requests to local sockets.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpx's own defaults.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def _guarded_pool(core, allowed: Allowed, ssl_context, limits):
    return core.ConnectionPool(ssl_context=ssl_context, max_connections=limits.max_connections,
                               max_keepalive_connections=limits.max_keepalive_connections,
                               keepalive_expiry=limits.keepalive_expiry, network_backend=_GuardedBackend(core, allowed))


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose every new connection goes through the guard. Proxies are not supported: a client
    using this transport should be made with trust_env=False, or an environment proxy would be used instead."""

    def __init__(self, allowed: Allowed, *, verify=True, limits: httpx.Limits = _LIMITS):
        # HTTPTransport.__init__ would build a pool with the default backend; every other method only uses _pool.
        self._pool = _guarded_pool(httpcore, allowed, httpx.create_ssl_context(verify=verify), limits)


def httpx2_transport(allowed: Allowed):
    """The same guard as an httpx2 transport: huggingface_hub 2 talks through an httpx2 client."""
    import httpcore2
    import httpx2

    class GuardedTransport2(httpx2.HTTPTransport):
        def __init__(self):
            self._pool = _guarded_pool(httpcore2, allowed, httpx2.create_ssl_context(), _LIMITS)

    return GuardedTransport2()
