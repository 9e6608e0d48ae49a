"""Rate limits and the sign-in lockout: every refusal is a 429 with Retry-After and a message a person can read.

One algorithm for all of them, DRF's sliding window (SimpleRateThrottle), with its counters in Django's cache, which
is Redis (settings.CACHES), so that every web process counts against the same limit. The rates are
settings.GARAGE_THROTTLE_RATES, read at each request. The sign-in lockout is django-axes (settings AXES_*); the
functions it is configured with are here.
"""
import hashlib
import math

from django.conf import settings
from django.shortcuts import render
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


def client_ip(request) -> str | None:
    """The address of the connection. X-Forwarded-For is not believed here: anyone can send it. Behind a proxy, the
    ASGI server puts the client's address in place of the proxy's when told to (uvicorn --proxy-headers). None when
    there is no connection (a sign-in made in code): the address columns hold only real addresses."""
    return request.META.get("REMOTE_ADDR") or None


class _RateFromSettings:
    """Reads the scope's rate from settings at each request (DRF reads its own at import), so that an administrator's
    variable, or a test, decides it."""

    scope: str

    def get_rate(self):
        return settings.GARAGE_THROTTLE_RATES[self.scope]


class ApiUserThrottle(_RateFromSettings, UserRateThrottle):
    """The REST API, per signed-in user."""

    scope = "api"

    def get_cache_key(self, request, view):
        # Anonymous requests are ApiAnonThrottle's to count.
        return super().get_cache_key(request, view) if request.user and request.user.is_authenticated else None


class ApiAnonThrottle(_RateFromSettings, AnonRateThrottle):
    """The REST API, per address, before signing in."""

    scope = "api_anon"

    def get_ident(self, request):
        return client_ip(request)


class _KeyedThrottle(_RateFromSettings, SimpleRateThrottle):
    """DRF's throttle for anything that is not a DRF view: the caller names what is counted."""

    def __init__(self, scope: str, ident: str):
        self.scope = scope
        # Hashed: idents may be email addresses, which have no business in cache keys.
        self.ident = hashlib.sha256(ident.encode()).hexdigest()[:32]
        super().__init__()

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


def throttle_wait(*, scope: str, ident: str) -> int | None:
    """Counts one request of `ident` (a user, an address, an email) against the rate of `scope`.

    Returns None when it is allowed, else the whole seconds to wait before the next one is. Side effect: records the
    request in the cache when it is allowed.
    """
    throttle = _KeyedThrottle(scope, ident)
    if throttle.allow_request(None, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def throttled_message(wait: int, what: str = "requests") -> str:
    return f"Too many {what}. Try again in {_wait_text(wait)}."


def throttled_page(request, *, wait: int, message: str):
    """The page that refuses a request over its limit: 429, with Retry-After."""
    response = render(request, "accounts/throttled.html", {"message": message, "wait_text": _wait_text(wait)},
                      status=429)
    response["Retry-After"] = str(wait)
    return response


def signin_username(request, credentials) -> str | None:
    """The account a sign-in attempt names, as django-axes counts it: emails are stored lower-cased, so "Alice@…" and
    "alice@…" are one account and share one count."""
    value = credentials.get("username") if credentials else request.POST.get("username")
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def signin_lockout_response(request, original_response=None, credentials=None):
    """django-axes's answer to a sign-in while the account or the address is locked out."""
    wait = int(settings.AXES_COOLOFF_TIME.total_seconds())
    return throttled_page(request, wait=wait, message=(
        f"Too many failed sign-ins for this account or from this address. Sign-in is paused for {_wait_text(wait)}; "
        "if you forgot your password, reset it instead."))
