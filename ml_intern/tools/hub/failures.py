"""One wording for Hub failures, whichever tool hit them: what went wrong while doing what, and what to do.

Every tool passes `what` ("listing jobs", "reading model repo org/x"); the sentence around it comes from here.
"""

from __future__ import annotations

import re

from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

TOKEN_HINT = "set HF_TOKEN to a token with access (`hf auth login`, or `export HF_TOKEN=hf_...`)"
LISTERS = {"model": "list_models", "dataset": "list_datasets", "space": "list_spaces"}
CREATE_FIRST = " To write to a new repo, create it first: hf_repo_git operation=create_repo."


def status_of(error: BaseException) -> int | None:
    """The HTTP status behind a Hub error, if there was a response."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def first_line(error: BaseException) -> str:
    """The first line of an error's message, else its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def server_text(error: HfHubHTTPError) -> str:
    """The server's own explanation, else the first line of the error."""
    return error.server_message or first_line(error)


def is_network_failure(error: BaseException) -> bool:
    """A connection-level failure: an HTTP transport error, or a download that got no answer."""
    names = {cls.__name__ for cls in type(error).__mro__}  # by name: HfApi's HTTP client is its own business
    return bool(names & {"TransportError", "LocalEntryNotFoundError"})


def is_hub_failure(error: BaseException) -> bool:
    """An error a Hub call reports (HTTP, network, or HfApi's checks of its arguments), not a bug of ours."""
    return isinstance(error, HfHubHTTPError | ValueError) or is_network_failure(error)


def hub_failure(error: BaseException, what: str, endpoint: str, hint: str = TOKEN_HINT) -> str:
    """The sentence the model reads for a failed Hub call; `hint` says how to get a token that works."""
    if is_network_failure(error):
        return (
            f"Could not reach the Hub at {endpoint} while {what}: {first_line(error)}; "
            "check the network or HF_ENDPOINT."
        )
    if not isinstance(error, HfHubHTTPError):  # HfApi's own checks, e.g. an invalid repo id
        return f"Invalid request while {what}: {first_line(error)}"
    status = status_of(error)
    if isinstance(error, GatedRepoError):
        return f"The repo is gated (HTTP {status}) while {what}: accept its terms on the Hub, then {hint}."
    if isinstance(error, RepositoryNotFoundError):
        return missing_repo(status, what, hint)
    if isinstance(error, RevisionNotFoundError):
        return f"Revision not found while {what}; list branches and tags: hf_repo_git operation=list_refs."
    if isinstance(error, EntryNotFoundError):
        return f"File not found while {what}; list the repo's files with hf_repo_files operation=list."
    return status_failure(status, what, server_text(error), getattr(error, "tries", 1), hint)


def missing_repo(status: int | None, what: str, hint: str = TOKEN_HINT) -> str:
    """A repo the Hub does not show: it answers 401 or 403 for private and gated repos as well."""
    if status in (401, 403):
        return f"Repo not found, or private or gated (HTTP {status}) while {what}: {hint}."
    return f"Repo not found (HTTP {status}) while {what}."


def status_failure(status: int | None, what: str, detail: str, tries: int = 1, hint: str = TOKEN_HINT) -> str:
    """The wording by HTTP status; `tries` is how many requests were sent before giving up."""
    after = f" after {tries} tries" if tries > 1 else ""
    if status == 401:
        return f"Not authorised (HTTP 401) while {what}: HF_TOKEN is missing, invalid or expired; {hint}."
    if status == 402:
        return (
            f"Payment required (HTTP 402) while {what}: {detail}; the account has no credits: ask the "
            "user to add some at https://huggingface.co/settings/billing, then try again."
        )
    if status == 403:
        return f"Not allowed (HTTP 403) while {what}: {detail}; {hint}."
    if status == 404:
        return f"Not found (HTTP 404) while {what}."
    if status == 429:
        return f"Rate limited by the Hub (HTTP 429) while {what}{after}; wait a minute, then retry."
    if status is not None and (status >= 500 or status == 408):
        return (
            f"The Hub failed with HTTP {status} while {what}{after}; retry later "
            "(after a write, first check whether it applied)."
        )
    return f"The Hub refused the request (HTTP {status}) while {what}: {detail}"


def explain(
    api: HfApi,
    error: BaseException,
    what: str,
    *,
    repo_id: str = "",
    repo_types: list[str] | None = None,
    write: bool = False,
    missing: str = "",
    hint: str = TOKEN_HINT,
) -> str:
    """`hub_failure`, then what only the caller knows: its own 404 message, similar repo names, how to
    create a repo before writing to it."""
    if missing and status_of(error) == 404:
        return missing
    text = hub_failure(error, what, api.endpoint, hint)
    if repo_id and isinstance(error, RepositoryNotFoundError) and not isinstance(error, GatedRepoError):
        text += suggestion_text(api, repo_id, repo_types or ["model"])
        if write and status_of(error) == 404:
            text += CREATE_FIRST
    return text


def similar_repos(api: HfApi, repo_id: str, repo_types: list[str], limit: int = 5) -> list[str]:
    """Ids of existing repos whose name resembles `repo_id`'s name part (best effort, never raises)."""
    name = repo_id.rsplit("/", 1)[-1]
    words = sorted(re.findall(r"[A-Za-z0-9]{3,}", name), key=len, reverse=True)
    found: list[str] = []
    try:
        for term in dict.fromkeys([name, *words[:3]]):  # the whole name, then its longest words
            for repo_type in repo_types:
                found += [info.id for info in getattr(api, LISTERS[repo_type])(search=term, limit=limit)]
            if found:
                break
    except Exception:  # suggestions are a courtesy: a failing search ends them, the real error is reported
        pass
    return [repo for repo in dict.fromkeys(found) if repo != repo_id][:limit]


def suggestion_text(api: HfApi, repo_id: str, repo_types: list[str]) -> str:
    """' Did you mean: a, b?' or a hint to search."""
    close = similar_repos(api, repo_id, repo_types)
    if close:
        return " Did you mean: " + ", ".join(close) + "?"
    return " No similar names found; search with hub_repo_search."
