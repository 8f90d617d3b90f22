"""A tiny threaded HTTP server on 127.0.0.1 that records every request and answers from regex routes.

Subclasses register routes; tests read `server.requests` and inject failures with `server.fail(...)`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Reply = tuple[int, dict[str, str], bytes]
POLL_SECONDS = 0.01  # how often a serving thread looks for shutdown(): each fake's close waits up to this


def serve_in_background(httpd: ThreadingHTTPServer, name: str) -> threading.Thread:
    """Serve `httpd` on a daemon thread, request handlers on daemon threads too."""
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(POLL_SECONDS,), name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(httpd: ThreadingHTTPServer) -> None:
    """Stop the serving thread and release the port."""
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str  # URL-decoded path, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    match: re.Match | None = field(default=None, repr=False)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def ndjson(self) -> list[dict]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()


class Abort(Exception):
    """Raised by a route handler to answer with an error reply right away."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply[0])
        self.reply = reply


@dataclass
class Failure:
    method: str
    pattern: re.Pattern
    reply: Reply
    times: int


class FakeHTTPServer:
    """Base class: start/stop, request log, routes, injected failures."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: list[tuple[str, re.Pattern, Callable[[Recorded], Reply]]] = []
        self.failures: list[Failure] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None, "server not started"
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, pattern: str, handler: Callable[[Recorded], Reply]) -> None:
        self.routes.append((method, re.compile(pattern), handler))

    def fail(self, method: str, pattern: str, status: int, times: int = 1, **kwargs: Any) -> None:
        """Answer the next `times` matching requests with `status` (headers=..., body=... optional)."""
        body = kwargs.get("body", {"error": f"injected {status}"})
        reply = json_reply(status, body, kwargs.get("headers"))
        self.failures.append(Failure(method, re.compile(pattern), reply, times))

    def find(self, method: str, path_pattern: str = "") -> list[Recorded]:
        """Recorded requests with this method whose path matches `path_pattern`."""
        return [r for r in self.requests if r.method == method and re.search(path_pattern, r.path)]

    def dispatch(self, request: Recorded) -> Reply:
        with self.lock:
            self.requests.append(request)
            for failure in self.failures:
                if (
                    failure.times > 0
                    and failure.method == request.method
                    and failure.pattern.search(request.path)
                ):
                    failure.times -= 1
                    return failure.reply
            for method, pattern, handler in self.routes:
                same_method = request.method == method or (method, request.method) == ("GET", "HEAD")
                match = pattern.fullmatch(request.path)
                if same_method and match:
                    request.match = match
                    try:
                        return handler(request)
                    except Abort as abort:
                        return abort.reply
        return json_reply(404, {"error": f"no fake route for {request.method} {request.path}"})

    def start(self) -> FakeHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Recorded(self.command, unquote(parts.path), parse_qs(parts.query), headers, body)
                status, reply_headers, payload = fake.dispatch(request)
                self.send_response(status)
                for key, value in reply_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", reply_headers.get("Content-Length", str(len(payload))))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server, type(self).__name__)
        return self

    def stop(self) -> None:
        if self.server is not None:
            stop_serving(self.server)

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
