"""GitHub REST calls for the github_* tools (the token goes to the API host only, see tools/http.py)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.http import fetch

JSON_ACCEPT = "application/vnd.github+json"
RAW_ACCEPT = "application/vnd.github.raw"


def is_rate_limited(response: httpx.Response) -> bool:
    """GitHub signals exhausted quotas as 429, or 403 with no requests remaining."""
    exhausted = response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0"
    return response.status_code == 429 or exhausted


def split_repo(repo: str, org: str = "") -> tuple[str, str]:
    """'owner/name' (or name plus a separate org) -> (owner, name)."""
    repo = repo.strip().removeprefix("https://github.com/").strip("/").removesuffix(".git")
    if "/" in repo:
        owner, name = repo.split("/", 1)
        return owner, name.split("/", 1)[0]
    if org and repo:
        return org.strip(), repo
    raise ToolError(f"repo must look like 'owner/name' (e.g. 'huggingface/trl'), got {repo!r}.")


def repo_path(owner: str, name: str, rest: str = "") -> str:
    """The API path of a repository, with `rest` (e.g. 'contents/a b.py') URL-quoted."""
    return f"/repos/{quote(owner)}/{quote(name)}" + (f"/{quote(rest)}" if rest else "")


class GitHubApi:
    """GET requests to the configured GitHub API with the run's token."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.base = env.github_api_url.rstrip("/")
        self.token = env.github_token

    async def get(
        self,
        path: str,
        not_found: str,
        params: dict[str, Any] | None = None,
        raw: bool = False,
        invalid: str = "",
        missing_ok: bool = False,
    ) -> Any:
        """JSON (or raw text) from `path`; failures become ToolError with advice (422: `invalid`; 404: None
        when `missing_ok`)."""
        headers = {"Accept": RAW_ACCEPT if raw else JSON_ACCEPT, "X-GitHub-Api-Version": "2022-11-28"}
        response = await fetch(self.env, self.base + path, params=params, headers=headers)
        if response.status_code == 200:
            return response.text if raw else response.json()
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code == 422 and invalid:
            raise ToolError(invalid)
        raise ToolError(self.failure(response, not_found))

    def failure(self, response: httpx.Response, not_found: str) -> str:
        """What went wrong, and what the model (or the user) can do about it."""
        status = response.status_code
        message = _server_message(response)
        if is_rate_limited(response):
            reset = response.headers.get("x-ratelimit-reset", "")
            wait = (
                f" (resets in ~{max(0, int(reset) - int(time.time())) // 60 + 1} min)"
                if reset.isdigit()
                else ""
            )
            advice = "wait and retry" if self.token else "set GITHUB_TOKEN for a much higher limit, or wait"
            return f"GitHub rate limit exceeded{wait}: {advice}."
        if status == 401:
            if self.token:
                return (
                    "GitHub rejected GITHUB_TOKEN (401): it is invalid or expired; set a valid GITHUB_TOKEN."
                )
            return "GitHub requires authentication (401): set GITHUB_TOKEN."
        if status == 403:
            hint = "GITHUB_TOKEN lacks access to it" if self.token else "GITHUB_TOKEN must be set"
            return f"GitHub refused access (403: {message}): {hint}."
        if status == 404:
            return not_found + ("" if self.token else " A private repo also needs GITHUB_TOKEN.")
        return f"GitHub API error {status}: {message}"


def _server_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:200] or response.reason_phrase
    except (ValueError, AttributeError):
        return response.text[:200] or response.reason_phrase
