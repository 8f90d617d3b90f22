"""The `web_search` tool: a keyless web search (DuckDuckGo's HTML page) with domain filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.http import fetch
from ml_intern.tools.web.page_text import TextExtractor, has_class, tidy

MAX_RESULTS = 8
SNIPPET_CHARS = 300

DESCRIPTION = "Search the web: titles, URLs, snippets. Open a result with fetch_hf_docs."
SOURCES_REMINDER = "Include a Sources section (these URLs) in your final answer."


@dataclass
class SearchResult:
    """One organic result of the search page."""

    title: str
    url: str
    snippet: str = ""
    parts: dict[str, list[str]] = field(default_factory=lambda: {"title": [], "snippet": []}, repr=False)


class _ResultsParser(TextExtractor):
    """Reads DuckDuckGo's result blocks: title link (`result__a`), snippet (`result__snippet`); no ads."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[SearchResult] = []
        self._field: str | None = None  # "title" or "snippet" while inside that element
        self._in_ad = False

    def open_tag(self, tag: str, attributes: dict[str, str]) -> None:
        if tag == "div" and has_class(attributes, "result"):
            self._in_ad = has_class(attributes, "result--ad")
        elif tag == "a" and has_class(attributes, "result__a") and not self._in_ad:
            self.results.append(SearchResult(title="", url=target_url(attributes.get("href", ""))))
            self._field = "title"
        elif has_class(attributes, "result__snippet") and self.results and not self._in_ad:
            self._field = "snippet"

    def close_tag(self, tag: str) -> None:
        if tag in ("a", "div", "td") and self._field:
            self._field = None

    def write(self, text: str) -> None:
        if self._field and self.results:
            self.results[-1].parts[self._field].append(text)


def target_url(href: str) -> str:
    """The destination of a result link, unwrapping DuckDuckGo's `/l/?uddg=` redirector."""
    parts = urlsplit(href if "//" not in href[:2] else "https:" + href)
    wrapped = parse_qs(parts.query).get("uddg")
    return wrapped[0] if parts.path.startswith("/l/") and wrapped else href


def parse_results(html: str) -> list[SearchResult]:
    """The organic results of a search results page, in page order."""
    parser = _ResultsParser()
    parser.feed(html)
    parser.close()
    for result in parser.results:
        result.title = " ".join(tidy("".join(result.parts["title"])).split())
        result.snippet = " ".join(tidy("".join(result.parts["snippet"])).split())[:SNIPPET_CHARS]
    return [r for r in parser.results if r.url.startswith(("http://", "https://"))]


def normalised_url(url: str) -> str:
    """The same page's key: no scheme, 'www.', fragment, utm_* parameters or trailing '/'."""
    parts = urlsplit(url)
    host = parts.netloc.lower().removeprefix("www.")
    query = [
        (k, v) for k, values in parse_qs(parts.query).items() for v in values if not k.startswith("utm_")
    ]
    return urlunsplit(("", host, parts.path.rstrip("/"), urlencode(sorted(query)), ""))


def normalised_domain(domain: str) -> str:
    """'https://www.Example.com/' -> 'example.com'."""
    host = urlsplit(domain if "//" in domain else "//" + domain).netloc or domain
    return host.lower().removeprefix("www.").strip("/")


def in_domains(url: str, domains: list[str]) -> bool:
    """Whether the URL's host is one of `domains` or a subdomain of one."""
    host = urlsplit(url).hostname or ""
    host = host.lower().removeprefix("www.")
    return any(host == d or host.endswith("." + d) for d in domains)


def select_results(
    results: list[SearchResult], include: list[str], exclude: list[str], limit: int
) -> list[SearchResult]:
    """Apply the domain lists, drop duplicate pages, keep at most `limit`."""
    seen: set[str] = set()
    kept: list[SearchResult] = []
    for result in results:
        key = normalised_url(result.url)
        if (
            key in seen
            or (include and not in_domains(result.url, include))
            or in_domains(result.url, exclude)
        ):
            continue
        seen.add(key)
        kept.append(result)
    return kept[:limit]


def format_results(query: str, results: list[SearchResult]) -> str:
    """Numbered results for the model."""
    lines = [f"Web results for '{query}' ({len(results)}):", ""]
    for number, result in enumerate(results, 1):
        lines += [f"{number}. {result.title or '(untitled)'}", f"   {result.url}"]
        if result.snippet:
            lines.append(f"   {result.snippet}")
    return "\n".join([*lines, "", SOURCES_REMINDER])


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The `web_search` tool, searching the original's CLAWD_WEB_SEARCH_BASE_URL, else the config's URL."""
    search_url = env.environ.get("CLAWD_WEB_SEARCH_BASE_URL") or env.config.web_search.url

    async def web_search(
        query: str,
        num_results: Annotated[int, "max 8"] = 5,
        include_domains: list[str] | None = None,
        exclude_domains: list[str] | None = None,
    ) -> str:
        if not query.strip():
            raise ToolError("'query' must not be empty.")
        include = [normalised_domain(d) for d in include_domains or [] if d.strip()]
        exclude = [normalised_domain(d) for d in exclude_domains or [] if d.strip()]
        sent_query = f"{query} site:{include[0]}" if len(include) == 1 else query
        response = await fetch(env, search_url, params={"q": sent_query})
        if response.status_code != 200:
            raise ToolError(f"The search engine answered HTTP {response.status_code}; try again later.")
        found = parse_results(response.text)
        if not found and "anomaly" in response.text.lower():
            raise ToolError("The search engine asked for a bot check (rate limited); try again in a minute.")
        results = select_results(found, include, exclude, max(1, min(num_results, MAX_RESULTS)))
        if not results:
            return f"No web results for '{query}'" + (" in the allowed domains." if include else ".")
        return format_results(query, results)

    return [StructuredTool.from_function(coroutine=web_search, name="web_search", description=DESCRIPTION)]
