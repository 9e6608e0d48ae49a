"""Middleware of the whole site: a bound on request bodies (ASGI, before Django reads anything) and the
Content-Security-Policy of every response (Django)."""
import secrets

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.deprecation import MiddlewareMixin

from apps.accounts import firebase


class RequestSizeLimitMiddleware:
    """Refuses request bodies over settings.GARAGE_MAX_REQUEST_BYTES with a 413, before Django reads them.

    Django reads a whole body (spooling it to disk past a few megabytes) before any view, authentication included,
    can refuse it: without this bound an anonymous client could make the server write gigabytes. A Content-Length over
    the limit is refused without reading a byte; a body of unknown length (chunked) is counted as it arrives and
    reading stops at the limit. Websockets pass untouched (the ASGI server bounds their messages).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.GARAGE_MAX_REQUEST_BYTES
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return

        received = 0
        over = False
        started = False

        async def limited_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    # Django stops reading at a disconnect and answers nothing; the 413 is sent below instead.
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if over and not started:
            await _refuse(send, limit)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the ASGI server refuses a malformed length itself; counting covers the rest
    return None


async def _refuse(send, limit: int) -> None:
    body = (f"The request is too large: this server accepts at most {filesizeformat(limit)} in one request. "
            "Send a smaller file.\n").encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is never read, so the connection cannot carry another request.
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


# Google's endpoints that the Firebase JS SDK calls to sign in with an email and a password.
FIREBASE_AUTH_ORIGINS = ["https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com"]
FIREBASE_SDK_ORIGIN = "https://www.gstatic.com"


def content_security_policy(*, nonce: str) -> str:
    """What pages may load: this server's own files only, scripts also inline when they carry the page's nonce, and
    the Firebase JS SDK from Google when Firebase sign-in is on.

    Styles may be inline: the templates set `style` attributes, which cannot carry a nonce, and a style cannot run
    code. Websockets back to this server are covered by 'self'.
    """
    scripts = ["'self'", f"'nonce-{nonce}'"] if nonce else ["'self'"]
    connect = ["'self'"]
    if firebase.is_enabled():
        scripts.append(FIREBASE_SDK_ORIGIN)
        connect += FIREBASE_AUTH_ORIGINS
        if firebase.emulator_host():
            connect.append(f"http://{firebase.emulator_host()}")
    directives = {
        "default-src": ["'self'"],
        "script-src": scripts,
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": connect,
        "worker-src": ["'self'", "blob:"],  # the API reference page (Redoc) searches in a worker made from a blob
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],  # as X-Frame-Options: DENY, for browsers that read only this
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Sets the Content-Security-Policy header on every response, with a fresh nonce per request that templates
    put on their inline scripts: `<script nonce="{{ request.csp_nonce }}">`. An injected script has no nonce, so
    the browser refuses to run it."""

    def process_request(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)

    def process_response(self, request, response):
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(nonce=getattr(request, "csp_nonce", ""))
        return response
