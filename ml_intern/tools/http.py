"""The one HTTP client for our own calls (web pages, papers, docs, GitHub, the datasets-server), and the one
retry policy that the Hub client (`tools/hub/client.py`) applies too.

Credentials are set per request by an httpx event hook, which httpx runs again for every redirect it
follows: a token goes to its own host only, never to a host a redirect leads to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from itertools import count
from typing import Any

import httpx

from ml_intern.configs.schema import AgentConfig
from ml_intern.tools.base import ToolEnv, ToolError

USER_AGENT = "ml-intern/0.1 (+https://github.com/huggingface/ml-intern)"
HF_DOMAINS = ("huggingface.co", "hf.co")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRIES = 6  # whatever the config says, one call asks a failing host at most this often
DEFAULT_PORTS = {"http": 80, "https": 443}
TRANSIENT_ERRORS = frozenset(  # dropped or refused connections, by class name: httpx and httpx2 share them
    {"ConnectError", "ConnectTimeout", "ReadError", "WriteError", "RemoteProtocolError"}
)

logger = logging.getLogger("ml_intern.http")


@dataclass(frozen=True)
class HttpRetry:
    """How often and how patiently to retry throttled or failing requests (config section `http`)."""

    tries: int = 3  # total tries, the first included (at most MAX_TRIES)
    delay: float = 1.0  # seconds before the first retry, doubled for each next one
    max_delay: float = 4.0  # the longest wait; a server asking for longer (Retry-After) is not retried

    @classmethod
    def from_config(cls, config: AgentConfig) -> HttpRetry:
        section = config.http
        return cls(section.retry_attempts, section.retry_delay, section.max_retry_delay)

    def wait(self, failed_tries: int, headers: Mapping[str, str] | None = None) -> float | None:
        """Seconds to wait before the next try after `failed_tries` failures, or None to give up."""
        if failed_tries >= min(self.tries, MAX_TRIES):
            return None
        asked = requested_wait(headers or {})
        if asked is None:
            return min(self.delay * 2 ** (failed_tries - 1), self.max_delay)
        return asked if asked <= self.max_delay else None


def requested_wait(headers: Mapping[str, str]) -> float | None:
    """The wait a server asked for: Retry-After (seconds or a date), else an exhausted quota's reset time
    (GitHub's x-ratelimit headers, the Hub's `ratelimit` header)."""
    retry_after = headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    if retry_after:
        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    reset = headers.get("x-ratelimit-reset", "")  # GitHub: epoch seconds
    if reset.isdigit() and headers.get("x-ratelimit-remaining") == "0":
        return max(0.0, float(reset) - time.time())
    if "ratelimit" in headers:  # the Hub: `"api";r=0;t=55` (IETF draft), read by huggingface_hub's parser
        from huggingface_hub.utils import parse_ratelimit_headers

        quota = parse_ratelimit_headers(headers)
        return float(quota.reset_in_seconds) if quota is not None and quota.remaining == 0 else None
    return None


def is_transient(error: Exception) -> bool:
    """A dropped or refused connection worth one more try (httpx and httpx2 name their errors alike)."""
    return type(error).__name__ in TRANSIENT_ERRORS


def is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    """Throttling and transient server errors (GitHub reports an exhausted quota as 403, none remaining)."""
    return status in RETRY_STATUSES or (status == 403 and headers.get("x-ratelimit-remaining") == "0")


def same_origin(url: httpx.URL, other: httpx.URL) -> bool:
    """Whether two URLs share scheme, host and port."""
    if url.scheme != other.scheme or url.host.lower() != other.host.lower():
        return False
    return (url.port or DEFAULT_PORTS.get(url.scheme)) == (other.port or DEFAULT_PORTS.get(other.scheme))


def is_hf_url(url: httpx.URL, *endpoints: str) -> bool:
    """A Hugging Face host: a configured endpoint, or https on huggingface.co / hf.co or a subdomain."""
    if any(same_origin(url, httpx.URL(endpoint)) for endpoint in endpoints if endpoint):
        return True
    host = url.host.lower()
    return url.scheme == "https" and any(host == d or host.endswith("." + d) for d in HF_DOMAINS)


def credential_for(env: ToolEnv, url: httpx.URL) -> str | None:
    """The Authorization header `url` may carry: the HF token on Hugging Face hosts (HF_ENDPOINT and the
    datasets-server included), the GitHub token on the GitHub API, nothing anywhere else."""
    if env.hf_token and is_hf_url(url, env.hf_endpoint, env.datasets_server_url):
        return f"Bearer {env.hf_token}"
    if env.github_token and same_origin(url, httpx.URL(env.github_api_url)):
        return f"Bearer {env.github_token}"
    return None


class WebClient(httpx.AsyncClient):
    """An httpx.AsyncClient that gives each request its host's credentials and retries per `HttpRetry`."""

    def __init__(self, env: ToolEnv, **kwargs: Any) -> None:
        async def attach_credentials(request: httpx.Request) -> None:
            request.headers.pop("Authorization", None)
            credential = credential_for(env, request.url)
            if credential:
                request.headers["Authorization"] = credential

        self.retry = HttpRetry.from_config(env.config)
        kwargs.setdefault("timeout", 30.0)
        kwargs["headers"] = {"User-Agent": USER_AGENT, **kwargs.get("headers", {})}
        super().__init__(follow_redirects=True, event_hooks={"request": [attach_credentials]}, **kwargs)

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send, retrying a read after throttling, a server error or a dropped connection."""
        for failed in count(1):
            try:
                response = await super().send(request, **kwargs)
            except httpx.TransportError as error:
                repeat = request.method in SAFE_METHODS and is_transient(error)
                wait = self.retry.wait(failed) if repeat else None
                if wait is None:
                    raise
                logger.info("%s %s: %r; retrying in %.1f s", request.method, request.url, error, wait)
                await asyncio.sleep(wait)
                continue
            retry = request.method in SAFE_METHODS and is_retryable(response.status_code, response.headers)
            wait = self.retry.wait(failed, response.headers) if retry else None
            if wait is None:
                return response
            await response.aclose()
            logger.info(
                "%s %s: HTTP %d; retrying in %.1f s", request.method, request.url, response.status_code, wait
            )
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")


async def fetch(env: ToolEnv, url: str, **kwargs: Any) -> httpx.Response:
    """GET one URL with the run's credentials and retries: the response (any status), or ToolError when
    its host cannot be reached."""
    async with WebClient(env) as client:
        try:
            return await client.get(url, **kwargs)
        except httpx.TooManyRedirects:
            raise ToolError(f"Too many redirects starting from {url}") from None
        except httpx.TransportError as error:
            raise ToolError(f"Could not reach {httpx.URL(url).host or url}: {error!r}") from None
