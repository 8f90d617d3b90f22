"""Retrying model calls: transient provider faults are retried with backoff, the rest fail at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ml_intern.configs.schema import AgentConfig
from ml_intern.graph import events
from ml_intern.graph.events import emit
from ml_intern.secrets import redact

T = TypeVar("T")

TRANSIENT = {
    "RateLimitError",
    "Timeout",
    "APITimeoutError",
    "APIConnectionError",
    "ServiceUnavailableError",
    "BadGatewayError",
    "InternalServerError",
    "MidStreamFallbackError",
    "StreamIdleTimeout",  # model/bounded.py: a streamed reply went quiet
    "MalformedReply",  # model/bounded.py: a reply without a message
}
PERMANENT = {
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "PaymentRequiredError",
    "ContextWindowExceededError",
    "BadRequestError",
    "UnprocessableEntityError",
    "ContentPolicyViolationError",
    "NotAnApiResponse",  # model/bounded.py: an HTML page (a proxy or captive portal)
}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry (config key `retries`)."""

    attempts: int = 5  # retries after the first try
    base_delay: float = 1.0  # seconds before the first retry; doubled each time, with jitter
    max_delay: float = 30.0  # cap on one wait, Retry-After included

    @classmethod
    def from_config(cls, config: AgentConfig) -> RetryPolicy:
        return cls(**config.retries.model_dump())


def is_transient(exc: BaseException) -> bool:
    """A fault worth retrying: rate limits, 5xx, timeouts, dropped connections and streams."""
    name = type(exc).__name__
    if name in PERMANENT:
        return False
    status = getattr(exc, "status_code", None)
    return name in TRANSIENT or (isinstance(status, int) and (status == 429 or status >= 500))


def retry_after(exc: BaseException) -> float | None:
    """The provider's Retry-After, in seconds, when it sent one."""
    headers = getattr(exc, "litellm_response_headers", None) or getattr(
        getattr(exc, "response", None), "headers", None
    )
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def backoff(policy: RetryPolicy, attempt: int, exc: BaseException) -> float:
    """Seconds to wait before retry number `attempt` (0-based)."""
    hinted = retry_after(exc)
    if hinted is not None:
        return min(hinted, policy.max_delay)
    return min(policy.max_delay, policy.base_delay * 2**attempt) * random.uniform(0.5, 1.0)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Await `call()`, retrying transient faults up to `policy.attempts` times (each retry a notice)."""
    for attempt in range(policy.attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == policy.attempts or not is_transient(exc):
                raise
            delay = backoff(policy, attempt, exc)
            detail = redact(str(exc).strip().splitlines()[0][:160]) if str(exc).strip() else ""
            text = (
                f"model call failed ({type(exc).__name__}: {detail}); "
                f"retry {attempt + 1}/{policy.attempts} in {delay:.1f}s"
            )
            emit(events.notice("model", text))
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
