"""HTTP for the research tools: retries with short backoff, redirects, credentials only for their own host."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from huggingface_hub.errors import HfHubHTTPError

from ml_intern.configs.schema import AgentConfig
from ml_intern.tools.base import ToolEnv, ToolError

T = TypeVar("T")
USER_AGENT = "ml-intern/0.1 (+https://github.com/huggingface/ml-intern)"
HF_DOMAINS = ("huggingface.co", "hf.co")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}

AuthFor = Callable[[httpx.URL], dict[str, str]]  # the credential headers one URL may receive


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a throttled or failing request."""

    attempts: int = 3  # total tries, the first included
    delay: float = 1.0  # first backoff in seconds, doubled on each retry
    max_delay: float = 4.0  # cap on any single wait, Retry-After included

    @classmethod
    def from_config(cls, config: AgentConfig) -> RetryPolicy:
        """The `http` section of the config."""
        section = config.http
        return cls(section.retry_attempts, section.retry_delay, section.max_retry_delay)

    def wait_before_retry(self, response: httpx.Response | None, attempt: int) -> float:
        """Seconds to wait: the server's Retry-After or rate-limit reset if given, else backoff."""
        backoff = self.delay * 2**attempt
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            reset_at = response.headers.get("x-ratelimit-reset", "")
            if retry_after.isdigit():
                backoff = float(retry_after)
            elif reset_at.isdigit():
                backoff = max(0.0, float(reset_at) - time.time())
        return min(backoff, self.max_delay)


def same_origin(url: httpx.URL, other: httpx.URL) -> bool:
    """Whether two URLs share scheme, host and port."""
    if url.scheme != other.scheme or url.host.lower() != other.host.lower():
        return False
    return (url.port or DEFAULT_PORTS.get(url.scheme)) == (other.port or DEFAULT_PORTS.get(other.scheme))


def is_hf_url(url: httpx.URL, hf_endpoint: str) -> bool:
    """Whether `url` is a Hugging Face host: the configured endpoint, or https on huggingface.co / hf.co."""
    if same_origin(url, httpx.URL(hf_endpoint)):
        return True
    host = url.host.lower()
    return url.scheme == "https" and any(host == d or host.endswith("." + d) for d in HF_DOMAINS)


def hf_auth(env: ToolEnv) -> AuthFor:
    """Credential headers that carry the HF token to Hugging Face hosts and to nothing else."""

    def auth_for(url: httpx.URL) -> dict[str, str]:
        if env.hf_token and is_hf_url(url, env.hf_endpoint):
            return {"Authorization": f"Bearer {env.hf_token}"}
        return {}

    return auth_for


def is_retryable(response: httpx.Response) -> bool:
    """Throttling and transient server errors."""
    return response.status_code in RETRY_STATUSES


async def http_get(
    url: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    auth_for: AuthFor | None = None,
    policy: RetryPolicy | None = None,
    retry_if: Callable[[httpx.Response], bool] = is_retryable,
    timeout: float = 30.0,
) -> httpx.Response:
    """GET with retries; the last response (any status), or ToolError if the host is unreachable."""
    policy = policy or RetryPolicy()
    async with httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT}) as client:
        for attempt in range(policy.attempts):
            last_try = attempt == policy.attempts - 1
            try:
                response = await _follow_redirects(client, httpx.URL(url, params=params), headers, auth_for)
            except httpx.TransportError as exc:
                if last_try:
                    raise ToolError(f"Could not reach {httpx.URL(url).host}: {exc!r}") from exc
                await asyncio.sleep(policy.wait_before_retry(None, attempt))
                continue
            if last_try or not retry_if(response):
                return response
            await asyncio.sleep(policy.wait_before_retry(response, attempt))
    raise AssertionError("unreachable")


async def _follow_redirects(
    client: httpx.AsyncClient, url: httpx.URL, headers: dict[str, str] | None, auth_for: AuthFor | None
) -> httpx.Response:
    """Follow redirects by hand so that each hop gets only the credentials meant for its own host."""
    for _ in range(MAX_REDIRECTS + 1):
        hop_headers = {**(headers or {}), **(auth_for(url) if auth_for else {})}
        response = await client.get(url, headers=hop_headers)
        if not response.has_redirect_location:
            return response
        url = url.join(response.headers["location"])
    raise ToolError(f"Too many redirects starting from {url}")


async def hub_call(call: Callable[[], T], policy: RetryPolicy, missing: str) -> T:
    """Run a blocking HfApi call in a thread, retrying throttling; HTTP errors become messages."""
    for attempt in range(policy.attempts):
        try:
            return await asyncio.to_thread(call)
        except HfHubHTTPError as exc:
            status = exc.response.status_code
            if status == 404:
                raise ToolError(missing or f"Not found on the Hub: {exc.response.url}") from exc
            if status not in RETRY_STATUSES or attempt == policy.attempts - 1:
                detail = exc.server_message or str(exc).splitlines()[0]
                raise ToolError(f"Hugging Face API error {status}: {detail[:300]}") from exc
            await asyncio.sleep(policy.wait_before_retry(exc.response, attempt))
    raise AssertionError("unreachable")
