"""The one Hub client: every `HfApi` is built here, every request huggingface_hub sends follows one retry
policy (`HttpRetry`, config section `http`), and Hub failures reach the model worded by `hub/failures.py`.

huggingface_hub retries some calls itself (`http_backoff`: listings and their pages, uploads; 6 tries up to
8 s apart) and not others (`repo_info`, `whoami`, `paper_info`, ...). Wrapping either in a retry loop of our
own multiplied the requests (a listing that kept failing was sent 18-24 times). Instead, ml-intern gives
huggingface_hub its HTTP client (`set_client_factory`): `HubSession.send` retries reads, and writes the
caller marked repeatable, after 429/5xx or a dropped connection, per `HttpRetry`; when it gives up it raises
an error `http_backoff` does not retry. Other writes are sent once and left to huggingface_hub (its upload
retries). So one Hub call sends at most `http.retry_attempts` (at most 6) requests of ours, or
huggingface_hub's own count for an upload, and waits as Retry-After asks. Requests wait for the Hub without a
timeout, except within `bounded_requests(seconds)` (the sandbox's Hub calls: an exit must not hang on one).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import count
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx2
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import get_session, hf_raise_for_status, set_client_factory

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.http import RETRY_STATUSES, SAFE_METHODS, HttpRetry, is_transient
from ml_intern.tools.hub.failures import explain, is_hub_failure

T = TypeVar("T")
logger = logging.getLogger("ml_intern.hub")
_writes_repeatable: ContextVar[bool] = ContextVar("writes_repeatable", default=False)
_request_timeout: ContextVar[float | None] = ContextVar("request_timeout", default=None)
# Fetched with a 3 s timeout and a fallback (huggingface_hub's telemetry, the jobs price list): retrying only
# delays the caller (an approval, for the prices).
BEST_EFFORT_PATHS = ("/api/agent-harnesses", "/api/jobs/hardware")


class HubUnreachable(httpx2.TransportError):
    """The Hub did not answer (huggingface_hub's own backoff leaves this class alone)."""


class HubSession(httpx2.Client):
    """huggingface_hub's HTTP client, applying the one retry policy to every request it sends."""

    retry = HttpRetry()  # the run's policy, set by `hub_api` (one per process: the last config wins)

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        """Requests we may repeat are retried here, then fail with an error huggingface_hub does not retry;
        any other request is sent once and its outcome left to huggingface_hub (e.g. its upload retries)."""
        bound_timeout(request, _request_timeout.get())
        for failed in count(1):
            try:
                response = super().send(request, **kwargs)
            except httpx2.TransportError as error:
                if not may_repeat(request, 0):
                    raise
                wait = self.retry.wait(failed) if is_transient(error) else None
                if wait is None:
                    raise HubUnreachable(str(error) or type(error).__name__, request=request) from error
                logger.info("%s %s: %r; retrying in %.1f s", request.method, request.url, error, wait)
                time.sleep(wait)
                continue
            status = response.status_code
            if status not in RETRY_STATUSES or not may_repeat(request, status):
                return response
            wait = self.retry.wait(failed, response.headers)
            if wait is None:
                give_up(response, failed)
            response.close()
            logger.info("%s %s: HTTP %d; retrying in %.1f s", request.method, request.url, status, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")


def bound_timeout(request: httpx2.Request, seconds: float | None) -> None:
    """Cap each of the request's timeouts (connect, read, write, pool) at `seconds` (None: leave them)."""
    if seconds is not None:
        timeouts = request.extensions.get("timeout") or {}
        capped = {k: seconds if v is None else min(v, seconds) for k, v in timeouts.items()}
        request.extensions = {**request.extensions, "timeout": httpx2.Timeout(seconds).as_dict() | capped}


def may_repeat(request: httpx2.Request, status: int) -> bool:
    """Whether sending `request` again is safe and useful: a read (not a BEST_EFFORT_PATHS fetch); a write
    whose body can be sent again, when marked repeatable or refused with 429."""
    if request.url.path.endswith(BEST_EFFORT_PATHS):
        return False
    if request.method in SAFE_METHODS:
        return True
    replayable = isinstance(request.stream, httpx2.ByteStream)
    return replayable and (_writes_repeatable.get() or status == 429)


@contextmanager
def repeatable_writes(repeatable: bool = True) -> Iterator[None]:
    """Within: the writes sent may be sent twice without harm (cancelling a job, re-uploading a trace)."""
    token = _writes_repeatable.set(repeatable)
    try:
        yield
    finally:
        _writes_repeatable.reset(token)


@contextmanager
def bounded_requests(seconds: float) -> Iterator[None]:
    """Within: each request gives up after `seconds` without progress (connecting, sending, or waiting for
    the answer) instead of waiting for the Hub forever; the timeout is an error huggingface_hub reports."""
    token = _request_timeout.set(seconds)
    try:
        yield
    finally:
        _request_timeout.reset(token)


def give_up(response: httpx2.Response, tries: int) -> NoReturn:
    """Raise the Hub's error for a failed response, saying how many requests were sent."""
    response.read()
    try:
        hf_raise_for_status(response)
    except HfHubHTTPError as error:
        error.tries = tries  # type: ignore[attr-defined]  # read by the failure wording
        raise
    raise HfHubHTTPError(f"HTTP {response.status_code}", response=response)


def install_session(retry: HttpRetry | None = None) -> None:
    """Make huggingface_hub send its requests through `HubSession` (once), with `retry` from now on."""
    if retry is not None:
        HubSession.retry = retry
    if not isinstance(get_session(), HubSession):
        hooks = get_session().event_hooks  # huggingface_hub's own: offline mode, request ids
        set_client_factory(lambda: HubSession(event_hooks=hooks, follow_redirects=True, timeout=None))


def hub_api(endpoint: str, token: str | None, retry: HttpRetry | None = None) -> HfApi:
    """An HfApi for `endpoint` sending `token` (never a token huggingface_hub would find by itself)."""
    install_session(retry)
    return HfApi(endpoint=endpoint, token=token or False)


def make_api(env: ToolEnv) -> HfApi:
    """The run's HfApi: its endpoint, its token, its retry policy."""
    return hub_api(env.hf_endpoint, env.hf_token, HttpRetry.from_config(env.config))


async def hub_call(
    api: HfApi,
    call: Callable[[], T],
    what: str,
    *,
    repeatable: bool = False,
    **explained: Any,
) -> T:
    """Run a blocking Hub call in a worker thread (lazy listings drained there); Hub failures become a
    ToolError worded by `failures.explain` (`what`, plus its keyword arguments: repo_id, missing, ...)."""

    def run() -> T:
        try:
            with repeatable_writes(repeatable):
                result = call()
                return list(result) if isinstance(result, Iterator) else result  # type: ignore[return-value]
        except Exception as error:
            if not is_hub_failure(error):
                raise
            raise ToolError(explain(api, error, what, **explained)) from None

    return await asyncio.to_thread(run)


def repo_url(endpoint: str, repo_id: str, repo_type: str = "model") -> str:
    """The web page of a repo on the configured endpoint."""
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return f"{endpoint}/{prefix}{repo_id}"


def download_text(api: HfApi, repo_id: str, path: str, repo_type: str, revision: str | None) -> bytes:
    """A file's bytes, downloaded through a throwaway cache so nothing piles up on disk."""
    with tempfile.TemporaryDirectory(prefix="ml-intern-hub-") as cache:
        local = api.hf_hub_download(repo_id, path, repo_type=repo_type, revision=revision, cache_dir=cache)
        return Path(local).read_bytes()
