"""What the Hub tools share: an HfApi bound to the run, retries, and failures the model can act on."""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ml_intern.tools.base import ToolEnv, ToolError

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_DELAYS = (0.5, 1.5, 4.0)  # seconds before each retry, unless the server's Retry-After says otherwise
MAX_RETRY_AFTER = 10.0
RETRY_BUDGET = 15.0  # seconds; some HfApi calls already back off on their own, so cap the total
TOKEN_HINT = "set HF_TOKEN to a token with access (`hf auth login`, or `export HF_TOKEN=hf_...`)"
LISTERS = {"model": "list_models", "dataset": "list_datasets", "space": "list_spaces"}


def make_api(env: ToolEnv) -> HfApi:
    """An HfApi that talks to the run's endpoint with the run's token (never the import-time default)."""
    return HfApi(endpoint=env.hf_endpoint, token=env.hf_token)


def repo_url(endpoint: str, repo_id: str, repo_type: str = "model") -> str:
    """The web page of a repo on the configured endpoint."""
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    return f"{endpoint}/{prefix}{repo_id}"


def human_size(size: float | None) -> str:
    """1536 -> '1.5 KB'."""
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "?"


def status_of(error: HfHubHTTPError) -> int | None:
    """The HTTP status behind a Hub error, if there was a response."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def retry_delay(error: HfHubHTTPError, attempt: int, idempotent: bool = True) -> float | None:
    """Seconds to wait before retrying `error`, or None when it should not be retried.

    A write is retried only on 429: after a 5xx it may have happened, and repeating it could apply it twice.
    """
    retryable = RETRY_STATUSES if idempotent else {429}
    if status_of(error) not in retryable or attempt >= len(RETRY_DELAYS):
        return None
    retry_after = error.response.headers.get("Retry-After", "")
    try:
        return min(float(retry_after), MAX_RETRY_AFTER)
    except ValueError:
        return RETRY_DELAYS[attempt]


def with_retries(call: Callable[[], T], idempotent: bool = True) -> T:
    """Run a blocking Hub call, retrying rate limits and server errors with a short backoff."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return call()
        except HfHubHTTPError as error:
            delay = retry_delay(error, attempt, idempotent)
            if delay is None or time.monotonic() - started + delay > RETRY_BUDGET:
                raise
            time.sleep(delay)
            attempt += 1


def similar_repos(api: HfApi, repo_id: str, repo_types: list[str], limit: int = 5) -> list[str]:
    """Ids of existing repos whose name resembles `repo_id`'s name part (best effort, never raises)."""
    name = repo_id.rsplit("/", 1)[-1]
    words = sorted(re.findall(r"[A-Za-z0-9]{3,}", name), key=len, reverse=True)
    found: list[str] = []
    for term in dict.fromkeys([name, *words[:3]]):  # the whole name, then its longest words
        for repo_type in repo_types:
            try:
                found += [info.id for info in getattr(api, LISTERS[repo_type])(search=term, limit=limit)]
            except Exception:  # suggestions are a courtesy; the real error is reported anyway
                continue
        if found:
            break
    return [repo for repo in dict.fromkeys(found) if repo != repo_id][:limit]


def describe_failure(api: HfApi, error: HfHubHTTPError, repo_id: str, repo_types: list[str]) -> str:
    """One message saying what went wrong and what the model can do about it."""
    status = status_of(error)
    kind = "/".join(repo_types)
    if isinstance(error, GatedRepoError):
        return (
            f"{kind} repo {repo_id} is gated (HTTP {status}): accept its terms on the Hub, then {TOKEN_HINT}."
        )
    if isinstance(error, RepositoryNotFoundError):
        if status in (401, 403):
            lead = (
                f"{kind} repo {repo_id} is private or gated, or does not exist (HTTP {status}): {TOKEN_HINT}."
            )
        else:
            lead = f"{kind} repo {repo_id} not found (HTTP {status})."
        return lead + suggestion_text(api, repo_id, repo_types)
    if isinstance(error, RevisionNotFoundError):
        return f"Revision not found in {repo_id}; list branches and tags with hf_repo_git list_refs."
    if isinstance(error, EntryNotFoundError):
        return f"File not found in {repo_id}; list its files with hf_repo_files operation=list."
    if status in (401, 403):
        return f"Not allowed on {repo_id} (HTTP {status}): {server_text(error)}; {TOKEN_HINT}."
    if status == 429:
        return f"Rate limited by the Hub (HTTP 429) after {len(RETRY_DELAYS) + 1} tries; wait, then retry."
    if status in RETRY_STATUSES:
        return f"The Hub failed with HTTP {status}; retry later (after a write, first check if it applied)."
    return f"Hub request failed (HTTP {status}): {server_text(error)}"


def suggestion_text(api: HfApi, repo_id: str, repo_types: list[str]) -> str:
    """' Did you mean: a, b?' or a hint to search."""
    close = similar_repos(api, repo_id, repo_types)
    if close:
        return " Did you mean: " + ", ".join(close) + "?"
    return " No similar names found; search with hub_repo_search."


def server_text(error: HfHubHTTPError) -> str:
    """The server's own explanation, else the first line of the error."""
    return error.server_message or str(error).strip().splitlines()[0]


async def hub_call(
    api: HfApi,
    call: Callable[[], T],
    repo_id: str = "",
    repo_types: list[str] | None = None,
    idempotent: bool = True,
) -> T:
    """Run a blocking Hub call in a worker thread with retries; Hub failures become a ToolError."""

    def run() -> T:
        try:
            return with_retries(call, idempotent)
        except HfHubHTTPError as error:
            message = describe_failure(api, error, repo_id, repo_types or ["model"])
            if not idempotent and isinstance(error, RepositoryNotFoundError) and status_of(error) == 404:
                message += " To write to a new repo, create it first: hf_repo_git operation=create_repo."
            raise ToolError(message) from None
        except ValueError as error:  # HfApi's own argument checks, e.g. an invalid repo id
            raise ToolError(f"Invalid request: {error}") from None
        except Exception as error:
            if not is_network_failure(error):
                raise
            raise ToolError(unreachable(api, error)) from None

    return await asyncio.to_thread(run)


def unreachable(api: HfApi, error: Exception) -> str:
    """The message for a Hub that did not answer."""
    return f"Could not reach the Hub at {api.endpoint}: {error}; check the network or HF_ENDPOINT."


def is_network_failure(error: Exception) -> bool:
    """A connection-level failure: an HTTP transport error, or a download that got no answer."""
    names = {cls.__name__ for cls in type(error).__mro__}  # by name: HfApi's HTTP client is its own business
    return bool(names & {"TransportError", "LocalEntryNotFoundError"})


def download_text(api: HfApi, repo_id: str, path: str, repo_type: str, revision: str | None) -> bytes:
    """A file's bytes, downloaded through a throwaway cache so nothing piles up on disk."""
    with tempfile.TemporaryDirectory(prefix="ml-intern-hub-") as cache:
        local = api.hf_hub_download(repo_id, path, repo_type=repo_type, revision=revision, cache_dir=cache)
        return Path(local).read_bytes()


def card_body(readme: str) -> str:
    """A README without its YAML front matter."""
    text = readme.lstrip("\ufeff")
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4 :]
    return text.strip()


def arg(args: dict[str, Any], key: str, default: Any = "") -> Any:
    """`args[key]` with a default for missing or null values (approval rules see raw model arguments)."""
    value = args.get(key)
    return default if value is None else value


def flag(value: Any, default: bool = False) -> bool:
    """A raw boolean argument read the way pydantic will read it ("false", 0 and "no" are false)."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "f", "n", "")
    return bool(value)
