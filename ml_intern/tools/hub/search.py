"""Hub search tools: `hub_repo_search` (models, datasets, Spaces) and `hub_repo_details` (repo facts)."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from huggingface_hub import HfApi
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.tools.args import parse_args, tool_schema
from ml_intern.tools.base import ToolEnv, clip
from ml_intern.tools.hub.client import hub_call, make_api, repo_url
from ml_intern.tools.hub.details import DETAILS_DESCRIPTION, DetailsArgs, repo_details
from ml_intern.tools.hub.failures import LISTERS

RepoType = Literal["model", "dataset", "space"]
MAX_LIMIT = 50
MAX_SEARCH_CHARS = 12_000
SORT_KEYS = {
    "downloads": "downloads",
    "likes": "likes",
    "trending": "trending_score",
    "recent": "last_modified",
}
EXPAND = {
    "model": [
        "author",
        "downloads",
        "likes",
        "pipeline_tag",
        "library_name",
        "lastModified",
        "gated",
        "private",
    ],
    "dataset": ["author", "downloads", "likes", "lastModified", "gated", "private", "description"],
    "space": ["author", "likes", "sdk", "lastModified", "private", "cardData"],
}

SEARCH_DESCRIPTION = (
    "Search Hub models, datasets and Spaces: ids, task, downloads, likes, gated, last update."
)


class SearchArgs(BaseModel):
    query: str = Field("", description="Words in the repo id")
    repo_types: list[RepoType] = ["model", "dataset"]
    author: str = ""
    task: str = Field("", description="Pipeline tag")
    library: str = Field("", description="Models only, e.g. peft")
    sort: Literal["downloads", "likes", "trending", "recent"] = "downloads"
    limit: int = 10


def search_filters(repo_type: str, args: SearchArgs) -> dict[str, Any]:
    """Keyword arguments for HfApi.list_models / list_datasets / list_spaces."""
    sort = SORT_KEYS[args.sort]
    if repo_type == "space" and sort == "downloads":
        sort = "likes"  # Spaces have no download count
    kwargs: dict[str, Any] = {"sort": sort, "limit": min(max(args.limit, 1), MAX_LIMIT)}
    kwargs["expand"] = EXPAND[repo_type]
    if args.query:
        kwargs["search"] = args.query
    if args.author:
        kwargs["author"] = args.author
    if repo_type == "model" and args.task:
        kwargs["pipeline_tag"] = args.task
    if repo_type == "model" and args.library:
        kwargs["filter"] = args.library
    if repo_type == "dataset" and args.task:
        kwargs["task_categories"] = args.task
    return kwargs


def count(value: int | None) -> str:
    """12345678 -> '12.3M'."""
    if value is None:
        return "?"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.1f}{suffix}"
    return str(value)


def describe_result(info: Any, repo_type: str, endpoint: str) -> str:
    """One or two lines about one search hit."""
    facts = [getattr(info, "pipeline_tag", None), getattr(info, "library_name", None)]
    if repo_type == "space":
        facts.append(f"sdk {info.sdk}" if getattr(info, "sdk", None) else None)
    else:
        facts.append(f"{count(info.downloads)} downloads")
    facts.append(f"{count(info.likes)} likes")
    if info.last_modified:
        facts.append(f"updated {info.last_modified:%Y-%m-%d}")
    if getattr(info, "gated", False):
        facts.append(f"gated ({info.gated})")
    if info.private:
        facts.append("private")
    line = (
        f"- {info.id}: "
        + ", ".join(fact for fact in facts if fact)
        + f" {repo_url(endpoint, info.id, repo_type)}"
    )
    blurb = (getattr(info, "description", None) or "") if repo_type == "dataset" else space_blurb(info)
    blurb = " ".join(blurb.split())
    return line + (f"\n  {blurb[:160]}{'...' if len(blurb) > 160 else ''}" if blurb else "")


def space_blurb(info: Any) -> str:
    """A Space's title and short description, from its card."""
    card = getattr(info, "card_data", None)
    if card is None:
        return ""
    parts = [card.get("title"), card.get("short_description")]
    return " - ".join(str(part) for part in parts if part)


async def search_hub(api: HfApi, endpoint: str, args: SearchArgs) -> str:
    """The search results for every requested repo type, one section each."""
    sections = []
    for repo_type in dict.fromkeys(args.repo_types):
        lister = getattr(api, LISTERS[repo_type])
        kwargs = search_filters(repo_type, args)
        found = await hub_call(api, partial(lister, **kwargs), f"searching {repo_type}s")
        sort = next(name for name, key in SORT_KEYS.items() if key == kwargs["sort"])
        title = f"{repo_type.capitalize()}s ({len(found)}, by {sort})"
        lines = [describe_result(info, repo_type, endpoint) for info in found] or ["- none found"]
        sections.append(title + ":\n" + "\n".join(lines))
    notes = []
    if args.library and set(args.repo_types) - {"model"}:
        notes.append("(library applies to models only)")
    hint = "narrow the query or lower limit"
    return clip("\n\n".join(sections + notes), MAX_SEARCH_CHARS, hint)


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """Build `hub_repo_search` and `hub_repo_details` against the run's Hub endpoint."""
    api = make_api(env)

    async def hub_repo_search(**kwargs: Any) -> str:
        return await search_hub(api, env.hf_endpoint, parse_args(SearchArgs, kwargs))

    async def hub_repo_details(**kwargs: Any) -> str:
        return await repo_details(api, env.hf_endpoint, parse_args(DetailsArgs, kwargs))

    return [
        StructuredTool.from_function(
            coroutine=hub_repo_search,
            name="hub_repo_search",
            description=SEARCH_DESCRIPTION,
            args_schema=tool_schema(SearchArgs),
        ),
        StructuredTool.from_function(
            coroutine=hub_repo_details,
            name="hub_repo_details",
            description=DETAILS_DESCRIPTION,
            args_schema=tool_schema(DetailsArgs),
        ),
    ]
