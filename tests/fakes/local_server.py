"""The plumbing shared by the tests' stand-ins for remote services: a threaded HTTP server on a free local port that
hands every request to the subclass's `_handle(handler)`, started and stopped as a context manager."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    METHODS: tuple[str, ...] = ("GET", "POST")
    PROTOCOL = "HTTP/1.0"

    def __init__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = server.PROTOCOL

            def log_message(self, *args):  # keep test output clean
                pass

        for method in self.METHODS:
            setattr(Handler, f"do_{method}", lambda handler: server._handle(handler))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for the next poll, and every test stops a server.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @staticmethod
    def _send(handler, status: int, body, headers=None, content_type="application/json"):
        """Answer with JSON (a dict or list) or bytes; a HEAD request gets the headers only."""
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
