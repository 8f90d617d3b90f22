"""The `hf_papers` tool: find papers on the Hub, read them section by section, find what links to them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.tools.base import ToolEnv, ToolError, clip
from ml_intern.tools.hub.client import hub_call, make_api
from ml_intern.tools.web import paper_graph as graph
from ml_intern.tools.web import paper_listing as listing
from ml_intern.tools.web.page_text import page_of_text
from ml_intern.tools.web.paper_listing import normalise_arxiv_id
from ml_intern.tools.web.paper_sources import PaperSources
from ml_intern.tools.web.semantic_scholar import SemanticScholar

T = TypeVar("T")
Operation = Literal[
    "search", "trending", "paper_details", "read_paper", "citation_graph", "snippet_search", "recommend",
    "find_models", "find_datasets", "find_collections", "find_all_resources",
]  # fmt: skip
Direction = Literal["citations", "references", "both"]
SortBy = Literal["relevance", "citationCount", "publicationDate"]
S2_FILTERS = ("date_from", "date_to", "categories", "min_citations", "sort_by")
Sort = Literal["downloads", "likes", "trending"]
HUB_SORT = {"downloads": "downloads", "likes": "likes", "trending": "trending_score"}
SECTION_CHARS = 8_000
MAX_LIMIT = 50

DESCRIPTION = """ML papers: find, read, follow citations, find linked Hub models/datasets.
search (query; Semantic Scholar filters: date_from/date_to YYYY-MM-DD, categories = fields of study,
min_citations, sort_by relevance|citationCount|publicationDate); trending (date); paper_details; read_paper
(no section = abstract + sections; offset pages); citation_graph (direction); snippet_search (query:
passages); recommend (arxiv_id or positive_ids, negative_ids: CSV); find_all_resources (or find_models/
find_datasets/find_collections; sort downloads|likes|trending)."""


class PaperResearch:
    """The operations of `hf_papers` against one Hub endpoint and the configured paper HTML sources."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.hub_url = env.hf_endpoint
        self.api = make_api(env)
        self.sources = PaperSources(env, self.api)
        self.s2 = SemanticScholar(env)

    async def hub(self, call: Callable[[], T], what: str, missing: str = "") -> T:
        """Run a blocking HfApi call; a 404 becomes `missing` (when given)."""
        return await hub_call(self.api, call, what, missing=missing)

    async def search(self, query: str, limit: int) -> str:
        papers = await self.hub(
            lambda: self.api.list_papers(query=query, limit=limit), "searching papers", "No papers found."
        )
        if not papers:
            return f"No papers found for '{query}'. Try broader terms."
        return listing.format_paper_list(papers, f"Papers matching '{query}'", self.hub_url)

    async def trending(self, query: str, date: str, limit: int) -> str:
        wanted = max(limit * 3, 30) if query else limit
        papers = await self.hub(
            lambda: self.api.list_daily_papers(date=date or None, limit=wanted),
            "listing daily papers",
            "No daily papers found.",
        )
        if query:
            papers = [p for p in papers if _mentions(p, query.lower())]
        heading = "Trending papers" + (f" on {date}" if date else "") + (f" about '{query}'" if query else "")
        if not papers:
            return f"No {heading.lower()}."
        return listing.format_paper_list(papers[:limit], heading, self.hub_url)

    async def paper_details(self, arxiv_id: str) -> str:
        paper = await self.hub(
            lambda: self.api.paper_info(arxiv_id), f"reading paper {arxiv_id}", _not_on_hub(arxiv_id)
        )
        return listing.format_paper_details(paper, self.hub_url)

    async def read_paper(self, arxiv_id: str, section: str, offset: int) -> str:
        parsed = await self.sources.parsed(arxiv_id)
        if parsed is None:
            return await self._abstract_only(arxiv_id)
        paper, source_url = parsed
        if not section:
            return clip(
                listing.format_contents(paper, arxiv_id, source_url), hint="read one section at a time"
            )
        found = paper.find_section(section)
        if found is None:
            titles = "\n".join(f"- {s.title}" for s in paper.sections)
            raise ToolError(clip(f"Section '{section}' not found in {arxiv_id}. Sections:\n{titles}", 4_000))
        return page_of_text(f"# {found.title}\n{source_url}", found.text, offset, SECTION_CHARS)

    async def _abstract_only(self, arxiv_id: str) -> str:
        paper = await self.hub(
            lambda: self.api.paper_info(arxiv_id), f"reading paper {arxiv_id}", _not_on_hub(arxiv_id)
        )
        return (
            f"# {paper.title}\nhttps://arxiv.org/abs/{arxiv_id}\n\n"
            f"## Abstract\n{(paper.summary or '').strip()}\n\n"
            f"No HTML version of this paper was found, so only the abstract is shown. "
            f"PDF: https://arxiv.org/pdf/{arxiv_id}"
        )

    async def find_repos(self, kind: str, arxiv_id: str, sort: str, limit: int) -> str:
        """Models or datasets (`kind`) whose cards cite the paper."""
        lister = self.api.list_models if kind == "models" else self.api.list_datasets
        found = await self.hub(
            lambda: lister(filter=f"arxiv:{arxiv_id}", sort=HUB_SORT[sort], limit=limit),
            f"finding {kind} citing arxiv:{arxiv_id}",
        )
        if not found:
            return f"No {kind} cite arxiv:{arxiv_id}."
        return (listing.format_models if kind == "models" else listing.format_datasets)(found, arxiv_id, sort)

    async def find_collections(self, arxiv_id: str, limit: int) -> str:
        collections = await self.hub(
            lambda: self.api.list_collections(item=f"papers/{arxiv_id}", limit=limit),
            f"finding collections with arxiv:{arxiv_id}",
        )
        if not collections:
            return f"No collections include arxiv:{arxiv_id}."
        return listing.format_collections(collections, arxiv_id, self.hub_url)

    async def find_all_resources(self, arxiv_id: str, sort: str, limit: int) -> str:
        per_kind = min(limit, 10)
        parts = await asyncio.gather(
            self.find_repos("models", arxiv_id, sort, per_kind),
            self.find_repos("datasets", arxiv_id, sort, per_kind),
            self.find_collections(arxiv_id, per_kind),
        )
        return f"Resources linked to {self.hub_url}/papers/{arxiv_id}\n\n" + "\n\n".join(parts)


def _mentions(paper: Any, query: str) -> bool:
    text = " ".join([paper.title or "", paper.summary or "", *(paper.ai_keywords or [])]).lower()
    return query in text


def _not_on_hub(arxiv_id: str) -> str:
    return f"Paper {arxiv_id} was not found on the Hub; check the arxiv id (operation='search' finds ids)."


async def run_operation(research: PaperResearch, operation: str, args: dict[str, Any]) -> str:
    """Check the arguments an operation needs, then run it."""
    limit = max(1, min(int(args.get("limit") or 10), MAX_LIMIT))
    query, sort = args.get("query", "").strip(), args.get("sort") or "downloads"
    if operation in ("search", "snippet_search") and not query:
        raise ToolError(f"'query' is required for {operation}.")
    if operation == "search":
        filters = {name: args.get(name) for name in S2_FILTERS if args.get(name) not in (None, "", 0)}
        if filters.get("sort_by") == "relevance":
            del filters["sort_by"]
        if filters:
            return await graph.filtered_search(research.s2, query, filters, limit)
        return await research.search(query, limit)
    if operation == "snippet_search":
        return await graph.snippet_search(research.s2, query, limit)
    if operation == "trending":
        return await research.trending(query, args.get("date", "").strip(), limit)
    arxiv_id = normalise_arxiv_id(args.get("arxiv_id", ""))
    if operation == "recommend":
        positive = graph.id_list(args.get("positive_ids") or arxiv_id)
        return await graph.recommend(
            research.s2, positive, graph.id_list(args.get("negative_ids", "")), limit
        )
    if not arxiv_id:
        raise ToolError(f"'arxiv_id' is required for {operation} (operation='search' finds ids).")
    calls = {
        "read_paper": lambda: research.read_paper(
            arxiv_id, args.get("section", "").strip(), int(args.get("offset") or 0)
        ),
        "citation_graph": lambda: graph.citation_graph(
            research.s2, arxiv_id, args.get("direction") or "citations", limit
        ),
        "paper_details": lambda: research.paper_details(arxiv_id),
        "find_models": lambda: research.find_repos("models", arxiv_id, sort, limit),
        "find_datasets": lambda: research.find_repos("datasets", arxiv_id, sort, limit),
        "find_collections": lambda: research.find_collections(arxiv_id, limit),
        "find_all_resources": lambda: research.find_all_resources(arxiv_id, sort, limit),
    }
    if operation not in calls:
        valid = ", ".join(["search", "snippet_search", "trending", "recommend", *calls])
        raise ToolError(f"Unknown operation '{operation}'. Valid: {valid}.")
    return await calls[operation]()


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The `hf_papers` tool bound to this run's endpoints."""
    research = PaperResearch(env)

    async def hf_papers(
        operation: Operation,
        query: str = "",
        arxiv_id: str = "",
        section: Annotated[str, "number or title"] = "",
        limit: int = 10,
        direction: Direction = "citations",
        date: str = "",
        sort: Sort = "downloads",
        offset: int = 0,
        date_from: str = "",
        date_to: str = "",
        categories: str = "",
        min_citations: int = 0,
        sort_by: SortBy = "relevance",
        positive_ids: str = "",
        negative_ids: str = "",
    ) -> str:
        args = {key: value for key, value in locals().items() if key != "research"}
        return clip(await run_operation(research, operation, args))

    return [StructuredTool.from_function(coroutine=hf_papers, name="hf_papers", description=DESCRIPTION)]
