"""GitHub research tools: `github_find_examples`, `github_list_repos`, `github_read_file` (read-only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.tools.base import ToolEnv, ToolError, clip
from ml_intern.tools.web.github_api import GitHubApi
from ml_intern.tools.web.github_examples import MIN_SCORE, find_examples
from ml_intern.tools.web.github_files import read_file

MAX_REPOS = 100

FIND_DESCRIPTION = "Find example scripts in a GitHub repo by keyword; use before writing training code."
LIST_DESCRIPTION = "List a GitHub owner's repositories."
READ_DESCRIPTION = "Read a GitHub file (300 lines by default); notebooks as Markdown."


def format_repos(repos: list[dict[str, Any]], owner: str, sort: str) -> str:
    """A table of repositories."""
    lines = [
        f"Repositories of {owner} by {sort} ({len(repos)}):",
        "| repo | stars | forks | language | updated | about |",
    ]
    lines.append("|---|---|---|---|---|---|")
    for repo in repos:
        about = " ".join((repo.get("description") or "").split())[:80]
        updated = (repo.get("updated_at") or "")[:10]
        lines.append(
            f"| {repo['full_name']} | {repo.get('stargazers_count', 0):,} | {repo.get('forks_count', 0):,} "
            f"| {repo.get('language') or ''} | {updated} | {about} |"
        )
    return "\n".join(lines)


async def list_repos(api: GitHubApi, owner: str, owner_type: str, sort: str, order: str, limit: int) -> str:
    """The text answer of github_list_repos (GitHub's repository search, which can sort by stars)."""
    owner = owner.strip().removeprefix("https://github.com/").strip("/")
    if not owner:
        raise ToolError("'owner' is required, e.g. 'huggingface'.")
    qualifier = "org" if owner_type == "org" else "user"
    params = {
        "q": f"{qualifier}:{owner}",
        "sort": sort,
        "order": order,
        "per_page": max(1, min(limit, MAX_REPOS)),
    }
    other = "user" if qualifier == "org" else "org"
    unknown = f"GitHub has no {qualifier} named '{owner}'. Check the name, or try owner_type='{other}'."
    found = await api.get("/search/repositories", unknown, params=params, invalid=unknown)
    repos = found.get("items") or []
    if not repos:
        return f"No public repositories found for {qualifier}:{owner}."
    return format_repos(repos, owner, sort)


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The three GitHub tools against the configured API URL."""
    api = GitHubApi(env)

    async def github_find_examples(
        repo: Annotated[str, "'trl' or 'owner/name'"],
        keyword: str = "",
        org: str = "huggingface",
        max_results: int = 50,
        min_score: int = MIN_SCORE,
    ) -> str:
        return clip(await find_examples(api, repo, org, keyword, max_results, min_score))

    async def github_list_repos(
        owner: str,
        owner_type: Literal["org", "user"] = "org",
        sort: Literal["stars", "forks", "updated"] = "stars",
        order: Literal["desc", "asc"] = "desc",
        limit: Annotated[int, "max 100"] = 30,
    ) -> str:
        return clip(await list_repos(api, owner, owner_type, sort, order, limit))

    async def github_read_file(
        repo: Annotated[str, "owner/name"],
        path: str,
        ref: str = "",
        line_start: int = 0,
        line_end: int = 0,
    ) -> str:
        return await read_file(api, repo, path, ref, line_start, line_end)

    return [
        StructuredTool.from_function(
            coroutine=github_find_examples, name="github_find_examples", description=FIND_DESCRIPTION
        ),
        StructuredTool.from_function(
            coroutine=github_list_repos, name="github_list_repos", description=LIST_DESCRIPTION
        ),
        StructuredTool.from_function(
            coroutine=github_read_file, name="github_read_file", description=READ_DESCRIPTION
        ),
    ]
