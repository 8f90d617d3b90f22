"""`explore_hf_docs` and `fetch_hf_docs`: search and read the Hugging Face libraries' documentation."""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.graph import events
from ml_intern.tools.base import ToolEnv, ToolError, clip, emit
from ml_intern.tools.http import fetch, is_hf_url
from ml_intern.tools.web.docs_index import (
    DOC_SOURCES,
    DocPage,
    doc_pages,
    format_pages,
    markdown_sections,
    rank,
)
from ml_intern.tools.web.page_text import html_to_markdown, page_of_text

DEFAULT_RESULTS = 20
MAX_RESULTS = 50
MAX_INDEXED_PAGES = 400
CONCURRENT_FETCHES = 8
PAGE_CHARS = 20_000
MAX_TEXT_CHARS = 2_500_000  # a fetched page's text is cut here
CACHED_CHARS = 20_000_000  # fetched texts kept for the run; the oldest go first
INDEXED_CHARS = 100_000  # of each docs page, kept for ranking and glimpses
COMPOSITE_LIBRARIES = {
    "optimum": [
        "optimum", "optimum-habana", "optimum-neuron", "optimum-intel", "optimum-executorch", "optimum-tpu",
    ],
    "courses": [
        "llm-course", "smol-course", "agents-course", "mcp-course", "deep-rl-course", "audio-course",
        "computer-vision-course", "diffusion-course", "robotics-course", "ml-games-course",
        "ml-for-3d-course", "cookbook",
    ],
}  # fmt: skip

EXPLORE_DESCRIPTION = (
    "Search (query) or list the pages of HF docs. Check current APIs before writing training code."
)
FETCH_DESCRIPTION = "Read a docs or web page as Markdown, 20k characters per call."


def resolve_doc_url(url: str, hub_url: str) -> str:
    """Absolute URL to fetch: '/docs/..' joins the Hub; HF docs pages are asked for as markdown."""
    url = url.strip()
    if url.startswith("/"):
        url = hub_url + url
    elif "://" not in url:
        url = "https://" + url
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ToolError(f"Not a web URL: {url!r}. Pass an http(s) URL from explore_hf_docs or web_search.")
    parsed = parsed.copy_with(fragment=None)
    if is_hf_url(parsed, hub_url) and parsed.path.startswith("/docs/") and not parsed.path.endswith(".md"):
        parsed = parsed.copy_with(path=parsed.path.rstrip("/") + ".md")
    return str(parsed)


class HfDocs:
    """Docs indexes per library and fetched pages, cached for the run."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.hub_url = env.hf_endpoint
        self.libraries: dict[str, list[DocPage]] = {}
        self.texts: dict[str, str] = {}  # fetched URL -> its text

    async def text_of(self, url: str) -> str:
        """The text at `url` (Markdown as is, HTML converted); the HF token goes only to HF hosts."""
        if url not in self.texts:
            response = await fetch(self.env, url)
            if response.status_code == 404:
                raise ToolError(f"Not found (404): {url}. Find page URLs with explore_hf_docs or web_search.")
            if response.status_code != 200:
                raise ToolError(f"HTTP {response.status_code} fetching {url}: {response.text[:200]}")
            is_html = "html" in response.headers.get("content-type", "")
            text = await asyncio.to_thread(html_to_markdown, response.text) if is_html else response.text
            self.remember(url, text[:MAX_TEXT_CHARS])
        return self.texts[url]

    def remember(self, url: str, text: str) -> None:
        """Cache a fetched text, dropping the oldest ones beyond CACHED_CHARS."""
        self.texts[url] = text
        total = sum(len(cached) for cached in self.texts.values())
        for old in list(self.texts)[:-1]:
            if total <= CACHED_CHARS:
                break
            total -= len(self.texts.pop(old))

    async def pages(self, endpoint: str) -> list[DocPage]:
        """Every page of a library (or of each library of a composite endpoint such as 'courses')."""
        pages: list[DocPage] = []
        for library in COMPOSITE_LIBRARIES.get(endpoint, [endpoint]):
            if library not in self.libraries:
                reader = self._gradio_pages if library == "gradio" else self._library_pages
                self.libraries[library] = await reader(library)
            pages += self.libraries[library]
        return pages

    async def _library_pages(self, library: str) -> list[DocPage]:
        url = f"{self.hub_url}/docs/{library}"
        response = await fetch(self.env, url)
        if response.status_code != 200:
            sources = ", ".join(DOC_SOURCES)
            raise ToolError(f"No docs at {url} (HTTP {response.status_code}). endpoint is one of: {sources}.")
        pages = doc_pages(response.text, library, self.hub_url)
        if not pages:
            raise ToolError(f"Found no page links on {url}; try fetch_hf_docs(url='{url}') instead.")
        return pages

    async def _gradio_pages(self, library: str) -> list[DocPage]:
        """Gradio's docs: one Markdown file (`docs.gradio_url`, its llms.txt) cut into sections."""
        url = self.env.config.docs.gradio_url
        return markdown_sections(await self.text_of(url), url)

    async def load(self, pages: list[DocPage], tool: str) -> None:
        """Fetch the markdown of pages not fetched yet, a few at a time."""
        missing = [page for page in pages if not page.content and not page.error]
        if len(missing) > CONCURRENT_FETCHES:
            emit(events.tool_log(tool, f"reading {len(missing)} docs pages"))
        gate = asyncio.Semaphore(CONCURRENT_FETCHES)

        async def load_one(page: DocPage) -> None:
            async with gate:
                try:
                    text = await self.text_of(resolve_doc_url(page.url, self.hub_url))
                    page.content = text[:INDEXED_CHARS]
                except ToolError as exc:
                    page.error = str(exc).split(":")[0]

        await asyncio.gather(*(load_one(page) for page in missing))


async def explore(docs: HfDocs, endpoint: str, query: str, max_results: int) -> str:
    """Rank a library's pages against `query`, or list the first ones."""
    endpoint = endpoint.strip().strip("/").removeprefix("docs/")
    if not endpoint:
        raise ToolError("'endpoint' is required, e.g. 'transformers' or 'trl'.")
    limit = max(1, min(max_results or DEFAULT_RESULTS, MAX_RESULTS))
    pages = await docs.pages(endpoint)
    if not query.strip():
        await docs.load(pages[:limit], "explore_hf_docs")
        heading = f"Docs of {endpoint}: {min(limit, len(pages))} of {len(pages)} pages"
        return format_pages(pages[:limit], heading, "")
    await docs.load(pages[:MAX_INDEXED_PAGES], "explore_hf_docs")
    ranked = rank(pages, query)
    if not ranked:
        heading = (
            f"No {endpoint} page matches '{query}'; the first {min(limit, len(pages))} of {len(pages)} pages:"
        )
        return format_pages(pages[:limit], heading, "")
    heading = f"Docs of {endpoint} matching '{query}': {min(limit, len(ranked))} of {len(ranked)} matches"
    if endpoint == "gradio":  # its sections are the whole docs: show them, not links to one big file
        return page_of_text(heading, "\n\n".join(page.content for page in ranked[:limit]), 0, PAGE_CHARS)
    return format_pages(ranked[:limit], heading, query)


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The two docs tools, sharing one cache of fetched pages."""
    docs = HfDocs(env)

    async def explore_hf_docs(
        endpoint: Annotated[str, "trl, transformers, hub, gradio, courses, ..."],
        query: str = "",
        max_results: Annotated[int, "max 50"] = DEFAULT_RESULTS,
    ) -> str:
        return clip(await explore(docs, endpoint, query, max_results))

    async def fetch_hf_docs(
        url: str,
        offset: int = 0,
    ) -> str:
        resolved = resolve_doc_url(url, docs.hub_url)
        text = await docs.text_of(resolved)
        return page_of_text(f"Documentation from: {resolved}", text, max(0, offset), PAGE_CHARS)

    return [
        StructuredTool.from_function(
            coroutine=explore_hf_docs, name="explore_hf_docs", description=EXPLORE_DESCRIPTION
        ),
        StructuredTool.from_function(
            coroutine=fetch_hf_docs, name="fetch_hf_docs", description=FETCH_DESCRIPTION
        ),
    ]
