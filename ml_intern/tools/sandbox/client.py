"""The HTTP client of a running sandbox server (protocol: server.py's docstring).

The sandbox token goes with every call. The private Space's edge asks for a Hugging Face credential: it gets
the Space's own short-lived token (spaces.py `edge_token`, renewed when refused), never the HF token, and
only on an https `*.hf.space` host or HF_ENDPOINT's own host (a self-hosted Hub, the tests' fake): code in the
sandbox that took the server's place would see a token good for its own Space alone. Redirects are never
followed: a token never travels on to wherever a redirect points."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from ml_intern.tools.base import ToolError

RETRY_WAITS = (3.0, 6.0)  # seconds between the three tries of a call that may be retried
IDEMPOTENT = frozenset({"read", "exists", "write", "health"})  # safe to send again after a bad answer
EDGE_STATUSES = frozenset({502, 503, 504})  # the Space's edge while the server (re)starts
SLACK_SECONDS = 30.0  # a whole call (request and reply) may take this much longer than the operation
CONNECT_SECONDS = 15.0
HEALTH_SECONDS = 5.0
MAX_REPLY_BYTES = 8 * 1024 * 1024  # a raw read is at most 1 MB of text; anything far larger is not ours
NOT_ANSWERING = "the sandbox is not answering (restarting?): try again in a minute"
OPERATION = re.compile(r"^[a-z]+$")


class Refused(ToolError):
    """A 401/403: our sandbox token, or the edge token the Space's edge checks (renewed once)."""


class BadReply(Exception):
    """A reply that is not the server's JSON (the Space's edge, a proxy): retried for idempotent calls."""


def sends_edge_token(url: str, hf_endpoint: str) -> bool:
    """Whether the Space's edge token may go to the server at `url`: an https `*.hf.space` host, or the host
    (and scheme) of HF_ENDPOINT."""
    target, hub = urlsplit(url), urlsplit(hf_endpoint)
    host = (target.hostname or "").lower()
    if target.scheme == "https" and host.endswith(".hf.space"):
        return True
    return bool(host) and host == (hub.hostname or "").lower() and target.scheme == hub.scheme


def one_line(text: str, limit: int = 500) -> str:
    """The first non-blank line of `text`, cut to `limit` characters."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


class SandboxClient:
    """Calls a sandbox server: `X-Sandbox-Authorization: Bearer <token>` always; the Space's edge token only
    to an https `*.hf.space` host or to HF_ENDPOINT's own host (self-hosted, tests); `renew` gets a new one
    when the edge refuses it (401/403)."""

    def __init__(
        self,
        url: str,
        token: str,
        edge_token: str | None,
        hf_endpoint: str,
        waits: tuple[float, ...] = RETRY_WAITS,
        renew: Callable[[], Awaitable[str | None]] | None = None,
        slack: float = SLACK_SECONDS,
    ) -> None:
        self.url, self.token, self.hf_endpoint = url.rstrip("/"), token, hf_endpoint
        self.edge_token = edge_token
        self.waits = waits  # between tries (tests shorten them)
        self.slack = slack  # added to an operation's own timeout: the most a whole call may take (tests too)
        self.renew = renew
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self.read_paths: set[str] = set()  # sandbox paths read through this client (the write guard)
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never the tokens
        return f"SandboxClient({self.url!r})"

    def headers(self) -> dict[str, str]:
        """The headers of every call."""
        headers = {"X-Sandbox-Authorization": f"Bearer {self.token}"}
        if self.edge_token and sends_edge_token(self.url, self.hf_endpoint):
            headers["Authorization"] = f"Bearer {self.edge_token}"
        return headers

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._http

    async def aclose(self) -> None:
        """Close the connections (the sandbox is gone or replaced)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def health(self, retry: bool = False) -> bool:
        """Whether the server answers GET /api/health with {"ok": true}; one try unless `retry` (a caller
        that polls is the retry)."""
        try:
            answer = await self._send("GET", "health", None, HEALTH_SECONDS, retry, reconnect=retry)
        except ToolError:
            return False
        return answer.get("ok") is True

    async def call(self, operation: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """POST /api/<operation>; the JSON answer, or a ToolError with the server's one-line error."""
        if not OPERATION.match(operation):
            raise ToolError(f"unknown sandbox operation {operation!r}")
        return await self._send("POST", operation, body, timeout + self.slack, operation in IDEMPOTENT)

    async def _send(
        self,
        method: str,
        operation: str,
        body: dict[str, Any] | None,
        seconds: float,
        retry: bool,
        reconnect: bool = True,
    ) -> dict[str, Any]:
        """One call, tried again after a refused connection (nothing was sent; unless not `reconnect`) and,
        when `retry`, after a reply of the Space's edge or a dropped connection."""
        waits, renewed = iter(self.waits), self.renew is None
        while True:
            try:
                return await self._once(method, operation, body, seconds)
            except Refused:
                if renewed:
                    raise
                renewed, self.edge_token = True, await self.renew()  # type: ignore[misc]
                continue
            except (httpx.ConnectError, httpx.ConnectTimeout):
                problem = f"the sandbox at {self.url} is not reachable: try again in a minute"
                if not reconnect:
                    raise ToolError(problem) from None
            except httpx.TimeoutException:
                raise ToolError(f"the sandbox did not answer {operation} within {seconds:.0f}s") from None
            except (httpx.TransportError, BadReply) as error:
                if not retry:
                    raise ToolError(self._lost(operation, error)) from None
                problem = self._lost(operation, error)
            wait = next(waits, None)
            if wait is None:
                raise ToolError(problem)
            await self.sleep(wait)

    def _lost(self, operation: str, error: Exception) -> str:
        if isinstance(error, BadReply):
            return str(error)
        return f"the connection to the sandbox broke during {operation} ({type(error).__name__}): " + (
            "it may have run or not; check before repeating it"
            if operation not in IDEMPOTENT
            else "try again"
        )

    async def _once(
        self, method: str, operation: str, body: dict[str, Any] | None, seconds: float
    ) -> dict[str, Any]:
        """One request, its whole reply read within `seconds` (httpx's timeouts are per read: a server that
        drips a byte at a time would keep the call alive forever)."""
        timeout = httpx.Timeout(seconds, connect=min(seconds, CONNECT_SECONDS))
        request = self.http().build_request(
            method, f"{self.url}/api/{operation}", json=body, headers=self.headers(), timeout=timeout
        )
        try:  # wait_for, not asyncio.timeout: the latter misreads a task already cancelled once (Ctrl-C)
            response, raw = await asyncio.wait_for(self._exchange(request), seconds)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no whole answer within {seconds:.0f}s", request=request) from None
        return self._answer(operation, response, raw)

    async def _exchange(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        response = await self.http().send(request, stream=True)
        try:
            return response, await self._bounded(response)
        finally:
            await response.aclose()

    @staticmethod
    async def _bounded(response: httpx.Response) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise ToolError(f"the sandbox's reply is larger than {MAX_REPLY_BYTES // 2**20} MB: refused")
            chunks.append(chunk)
        return b"".join(chunks)

    def _answer(self, operation: str, response: httpx.Response, raw: bytes) -> dict[str, Any]:
        """The reply's JSON object, or the ToolError (or BadReply) it stands for."""
        status = response.status_code
        if 300 <= status < 400:
            where = urlsplit(response.headers.get("location", "")).hostname or "elsewhere"
            raise ToolError(
                f"the sandbox redirected {operation} to {where}; redirects are not followed (a sandbox "
                "answers directly): check the Space, or start a new thread"
            )
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        error = one_line(answer.get("error", "")) if isinstance(answer, dict) else ""
        if status in (401, 403):
            said = error or one_line(raw.decode("utf-8", "replace")[:300]) or f"HTTP {status}"
            raise Refused(f"the sandbox refused our token: {said}")
        if status in EDGE_STATUSES or (status >= 500 and not isinstance(answer, dict)):
            raise BadReply(NOT_ANSWERING if not error else f"{NOT_ANSWERING} ({error})")
        if not isinstance(answer, dict):
            raise BadReply(f"the sandbox answered {operation} with something other than JSON (HTTP {status})")
        if status >= 400:
            raise ToolError(error or f"the sandbox failed {operation} (HTTP {status})")
        return answer
