"""`hub_repo_details`: what a model, dataset or Space is, from its Hub metadata and the start of its card."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
from pydantic import BaseModel, Field

from ml_intern.tools.base import ToolError, clip
from ml_intern.tools.hub.client import download_text, repo_url
from ml_intern.tools.hub.failures import explain, is_hub_failure, status_of
from ml_intern.tools.hub.file_text import card_body, human_size

MAX_REPOS = 5
CARD_CHARS = 1500
MAX_FILES = 25
MAX_TAGS = 20
MAX_DETAILS_CHARS = 20_000

DETAILS_DESCRIPTION = "Hub repo facts: license, gated, downloads, tags, files with sizes, start of the card."


class DetailsArgs(BaseModel):
    repo_ids: list[str] = Field(description=f"Up to {MAX_REPOS}")
    repo_type: Literal["auto", "model", "dataset", "space"] = "auto"


def fetch_info(api: HfApi, repo_id: str, repo_types: list[str]) -> tuple[str, Any]:
    """(repo type, info) for the first type under which `repo_id` exists."""
    failure: RepositoryNotFoundError | None = None
    for repo_type in repo_types:
        try:
            return repo_type, api.repo_info(repo_id, repo_type=repo_type, files_metadata=True)
        except RepositoryNotFoundError as error:
            if isinstance(error, GatedRepoError):
                raise
            if failure is None or status_of(error) != 404:  # a 401 says more than a 404 of another type
                failure = error
    assert failure is not None
    raise failure


def card_excerpt(api: HfApi, info: Any, repo_type: str) -> str:
    """The first CARD_CHARS characters of the README body, or a note that there is none."""
    names = {sibling.rfilename for sibling in info.siblings or []}
    if "README.md" not in names:
        return "(no README)"
    try:
        raw = download_text(api, info.id, "README.md", repo_type, info.sha)
    except GatedRepoError:
        return "(README unavailable: gated; accept its terms on the Hub and set HF_TOKEN)"
    except HfHubHTTPError as error:
        return f"(README unavailable: HTTP {status_of(error)})"
    body = card_body(raw.decode("utf-8", errors="replace"))
    if len(body) <= CARD_CHARS:
        return body or "(empty README)"
    return (
        body[:CARD_CHARS]
        + f"\n[... card cut at {CARD_CHARS} chars; hf_repo_files operation=read path=README.md]"
    )


def licence_of(info: Any) -> str | None:
    """The license from the card metadata, else from a `license:` tag."""
    card = getattr(info, "card_data", None)
    licence = getattr(card, "license", None) if card is not None else None
    tags = [tag.split(":", 1)[1] for tag in info.tags or [] if tag.startswith("license:")]
    return licence or (tags[0] if tags else None)


def facts_line(info: Any) -> str:
    """Key facts of a repo on one line."""
    runtime = getattr(info, "runtime", None)
    facts = {
        "task": getattr(info, "pipeline_tag", None),
        "library": getattr(info, "library_name", None),
        "sdk": getattr(info, "sdk", None),
        "runtime": getattr(runtime, "stage", None),
        "license": licence_of(info),
        "gated": (info.gated or "no") if hasattr(info, "gated") else None,
        "private": "yes" if info.private else None,
        "downloads (30d)": f"{info.downloads:,}" if getattr(info, "downloads", None) is not None else None,
        "likes": info.likes,
        "last modified": f"{info.last_modified:%Y-%m-%d}" if info.last_modified else None,
    }
    return ", ".join(f"{key}: {value}" for key, value in facts.items() if value is not None)


def files_line(info: Any) -> str:
    """The repo's files with sizes, capped at MAX_FILES."""
    siblings = info.siblings or []
    total = sum(sibling.size or 0 for sibling in siblings)
    shown = [f"{s.rfilename} ({human_size(s.size)})" if s.size is not None else s.rfilename for s in siblings]
    more = len(shown) - MAX_FILES
    listing = ", ".join(shown[:MAX_FILES]) + (
        f", ... +{more} more (hf_repo_files operation=list)" if more > 0 else ""
    )
    return f"Files ({len(siblings)}, {human_size(total)}): {listing or 'none'}"


def describe_repo(api: HfApi, endpoint: str, repo_id: str, repo_types: list[str]) -> str:
    """The details block for one repo, or a one-line failure that says what to do."""
    try:
        repo_type, info = fetch_info(api, repo_id, repo_types)
    except Exception as error:
        if not is_hub_failure(error):
            raise
        what = f"reading {'/'.join(repo_types)} repo {repo_id}"
        return f"## {repo_id}\n{explain(api, error, what, repo_id=repo_id, repo_types=repo_types)}"
    tags = info.tags or []
    tag_line = ", ".join(tags[:MAX_TAGS]) + (
        f" (+{len(tags) - MAX_TAGS} more)" if len(tags) > MAX_TAGS else ""
    )
    lines = [
        f"## {info.id} ({repo_type}) {repo_url(endpoint, info.id, repo_type)}",
        facts_line(info),
        f"Tags: {tag_line or 'none'}",
        files_line(info),
        "Card:",
        card_excerpt(api, info, repo_type),
    ]
    return "\n".join(lines)


async def repo_details(api: HfApi, endpoint: str, args: DetailsArgs) -> str:
    """Details for each requested repo, fetched concurrently."""
    if not args.repo_ids:
        raise ToolError("Give at least one repo id in repo_ids, e.g. ['Qwen/Qwen2.5-7B-Instruct'].")
    repo_types = ["model", "dataset", "space"] if args.repo_type == "auto" else [args.repo_type]
    ids = list(dict.fromkeys(args.repo_ids))[:MAX_REPOS]
    blocks = await asyncio.gather(
        *(asyncio.to_thread(describe_repo, api, endpoint, repo_id, repo_types) for repo_id in ids)
    )
    dropped = len(set(args.repo_ids)) - len(ids)
    note = [f"({dropped} more ids ignored: at most {MAX_REPOS} per call)"] if dropped > 0 else []
    return clip("\n\n".join([*blocks, *note]), MAX_DETAILS_CHARS, "ask for fewer repos at once")
