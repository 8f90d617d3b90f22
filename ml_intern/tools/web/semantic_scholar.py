"""A small Semantic Scholar client: retries with bounded waits, pacing with an API key, a cache."""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from typing import Any

import httpx

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.http import USER_AGENT, requested_wait

TRIES = 3
THROTTLED_WAIT = 60.0  # the original's wait after a 429 without Retry-After; capped by `max_wait` below
CACHED_RESPONSES = 500
SEARCH_SPACING, OTHER_SPACING = 1.0, 0.1  # seconds between calls with an API key (its rate limit)


class SemanticScholar:
    """GET/POST JSON against the configured Semantic Scholar base URL; failures become one ToolError."""

    def __init__(self, env: ToolEnv) -> None:
        self.base = env.config.papers.semantic_scholar_url.rstrip("/")
        self.api_key = env.environ.get("S2_API_KEY") or None
        retry = env.config.http
        self.server_error_wait = retry.retry_delay
        self.max_wait = retry.max_retry_delay * 5  # 20 s by default; tests configure a tiny one
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._last_call = 0.0
        self._pace = asyncio.Lock()

    async def get(self, path: str, params: dict[str, Any]) -> Any:
        return await self.request("GET", path, params)

    async def post(self, path: str, params: dict[str, Any], body: dict[str, Any]) -> Any:
        return await self.request("POST", path, params, body)

    async def request(self, method: str, path: str, params: dict[str, Any], body: Any = None) -> Any:
        """The JSON answer, cached per (method, path, params, body)."""
        params = {k: v for k, v in params.items() if v not in (None, "")}
        key = json.dumps([method, path, sorted(params.items()), body], default=str)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        data = await self._send(method, path, params, body)
        self._cache[key] = data
        if len(self._cache) > CACHED_RESPONSES:
            self._cache.popitem(last=False)
        return data

    async def _send(self, method: str, path: str, params: dict[str, Any], body: Any) -> Any:
        headers = {"User-Agent": USER_AGENT} | ({"x-api-key": self.api_key} if self.api_key else {})
        # No redirects: the key goes to the Semantic Scholar host only.
        async with httpx.AsyncClient(timeout=30.0, follow_redirects=False, headers=headers) as client:
            for attempt in range(1, TRIES + 1):
                await self._wait_turn("search" in path)
                try:
                    response = await client.request(method, self.base + path, params=params, json=body)
                except httpx.TransportError as error:
                    if attempt == TRIES:
                        raise ToolError(f"Semantic Scholar is unreachable: {type(error).__name__}") from None
                    await asyncio.sleep(self.server_error_wait)
                    continue
                wait = self._retry_wait(response)
                if wait is None or attempt == TRIES:
                    return _json_or_error(response, path)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def _retry_wait(self, response: httpx.Response) -> float | None:
        if response.status_code == 429:
            return min(requested_wait(response.headers) or THROTTLED_WAIT, self.max_wait)
        if response.status_code >= 500:
            return self.server_error_wait
        return None

    async def _wait_turn(self, is_search: bool) -> None:
        """With an API key, keep the key's rate limit: 1 s between searches, 0.1 s between other calls."""
        if not self.api_key:
            return
        async with self._pace:
            spacing = SEARCH_SPACING if is_search else OTHER_SPACING
            delay = self._last_call + spacing - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last_call = time.monotonic()


def _json_or_error(response: httpx.Response, path: str) -> Any:
    status = response.status_code
    if status == 404:
        raise ToolError("Semantic Scholar does not know this paper; check the arxiv id.")
    if status == 429:
        raise ToolError(
            "Semantic Scholar is rate-limiting requests; try again later (S2_API_KEY raises the limit)."
        )
    if status >= 400:
        detail = response.text[:200].replace("\n", " ")
        raise ToolError(f"Semantic Scholar answered HTTP {status} for {path}: {detail}")
    try:
        return response.json()
    except ValueError:
        raise ToolError(f"Semantic Scholar sent a non-JSON answer for {path}.") from None
