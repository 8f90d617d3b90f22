"""The Semantic Scholar operations of `hf_papers`: citation graph, snippet search, recommendations, filtered
search."""

from __future__ import annotations

from typing import Any

from ml_intern.tools.base import ToolError
from ml_intern.tools.web.paper_listing import normalise_arxiv_id, shorten
from ml_intern.tools.web.semantic_scholar import SemanticScholar

PAPER_FIELDS = "title,externalIds,year,citationCount"
CONTEXTS, CONTEXT_CHARS, SNIPPET_CHARS, ABSTRACT_CHARS = 2, 200, 400, 300
SORTS = {"citationCount": "citationCount:desc", "publicationDate": "publicationDate:desc"}
EDGES = {"citations": "citingPaper", "references": "citedPaper"}


def paper_line(paper: dict[str, Any]) -> str:
    """'Title (2023, 1,234 citations) arxiv_id: 2305.18290' from a Semantic Scholar paper."""
    meta = [str(paper["year"])] if paper.get("year") else []
    meta.append(f"{paper.get('citationCount') or 0:,} citations")
    arxiv = (paper.get("externalIds") or {}).get("ArXiv")
    return f"{paper.get('title') or '(untitled)'} ({', '.join(meta)})" + (
        f" arxiv_id: {arxiv}" if arxiv else ""
    )


async def citation_graph(s2: SemanticScholar, arxiv_id: str, direction: str, limit: int) -> str:
    """Papers citing `arxiv_id`, papers it cites, or both, with intents and citation contexts."""
    if direction not in ("citations", "references", "both"):
        raise ToolError("direction must be citations, references or both.")
    wanted = ["citations", "references"] if direction == "both" else [direction]
    fields = f"{PAPER_FIELDS},contexts,intents,isInfluential"
    parts = []
    for edge in wanted:
        data = await s2.get(f"/graph/v1/paper/ARXIV:{arxiv_id}/{edge}", {"fields": fields, "limit": limit})
        entries = [_edge_entry(item, EDGES[edge]) for item in data.get("data") or []]
        heading = f"## {'Cited by' if edge == 'citations' else 'References of'} arxiv:{arxiv_id}"
        parts.append("\n".join([heading, *entries]) if entries else f"{heading}\n(none found)")
    return "\n\n".join(parts)


def _edge_entry(item: dict[str, Any], side: str) -> str:
    line = "- " + ("[influential] " if item.get("isInfluential") else "") + paper_line(item.get(side) or {})
    if item.get("intents"):
        line += f"\n  intents: {', '.join(item['intents'])}"
    for context in (item.get("contexts") or [])[:CONTEXTS]:
        line += f"\n  > {shorten(context, CONTEXT_CHARS)}"
    return line


async def snippet_search(s2: SemanticScholar, query: str, limit: int) -> str:
    """Passages of paper text matching `query`."""
    data = await s2.get("/graph/v1/snippet/search", {"query": query, "limit": limit})
    hits = data.get("data") or []
    if not hits:
        return f"No passages found for '{query}'."
    lines = [f"# Passages matching '{query}'"]
    for hit in hits:
        paper, snippet = hit.get("paper") or {}, hit.get("snippet") or {}
        where = f" [{snippet['section']}]" if snippet.get("section") else ""
        lines.append(
            f"- {paper.get('title') or '(untitled)'}{where}\n  {shorten(snippet.get('text'), SNIPPET_CHARS)}"
        )
    return "\n".join(lines)


async def recommend(s2: SemanticScholar, positive: list[str], negative: list[str], limit: int) -> str:
    """Papers like `positive` (and unlike `negative`)."""
    if not positive:
        raise ToolError("recommend needs arxiv_id or positive_ids.")
    params = {"fields": PAPER_FIELDS, "limit": limit}
    if len(positive) == 1 and not negative:
        data = await s2.get(f"/recommendations/v1/papers/forpaper/ARXIV:{positive[0]}", params)
    else:
        body = {"positivePaperIds": [f"ARXIV:{i}" for i in positive]}
        body["negativePaperIds"] = [f"ARXIV:{i}" for i in negative]
        data = await s2.post("/recommendations/v1/papers/", params, body)
    papers = data.get("recommendedPapers") or []
    if not papers:
        return "No recommendations found."
    return "\n".join([f"# Papers like {', '.join(positive)}", *(f"- {paper_line(p)}" for p in papers)])


async def filtered_search(s2: SemanticScholar, query: str, filters: dict[str, Any], limit: int) -> str:
    """Semantic Scholar bulk search with date, field-of-study, citation and sort filters."""
    dates = f"{filters.get('date_from') or ''}:{filters.get('date_to') or ''}"
    params = {
        "query": query,
        "fields": f"{PAPER_FIELDS},abstract",
        "publicationDateOrYear": dates if dates != ":" else None,
        "fieldsOfStudy": filters.get("categories") or None,
        "minCitationCount": filters.get("min_citations") or None,
        "sort": SORTS.get(filters.get("sort_by") or ""),
    }
    data = await s2.get("/graph/v1/paper/search/bulk", params)
    papers = (data.get("data") or [])[:limit]
    if not papers:
        return f"No papers found for '{query}' with these filters. Loosen them."
    lines = [f"# Papers matching '{query}' (Semantic Scholar, {data.get('total', len(papers)):,} total)"]
    for paper in papers:
        lines.append(f"- {paper_line(paper)}\n  {shorten(paper.get('abstract'), ABSTRACT_CHARS)}")
    return "\n".join(lines)


def id_list(value: str) -> list[str]:
    """'2305.18290, arxiv:2106.09685' -> ['2305.18290', '2106.09685']."""
    return [normalise_arxiv_id(part) for part in value.split(",") if part.strip()]
