"""Hugging Face docs as the original reads them: a library's sidebar of pages, their markdown, ranked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

GLIMPSE_CHARS = 200


@dataclass
class DocPage:
    """One page of a library's docs."""

    title: str
    url: str  # the page URL; its markdown lives at url + ".md"
    content: str = ""  # markdown, once fetched
    error: str = ""  # why the markdown could not be fetched


class _DocLinks(HTMLParser):
    """Links to one library's pages: those in the sidebar (`<nav class="flex-auto ...">`) and the others."""

    def __init__(self, prefix: str) -> None:
        super().__init__(convert_charrefs=True)
        self.prefix = prefix  # e.g. "/docs/trl/"
        self.sidebar: list[tuple[str, str]] = []  # (path, title)
        self.elsewhere: list[tuple[str, str]] = []
        self._sidebar_depth = 0  # nesting of <nav> inside the sidebar
        self._link: tuple[str, list[str]] | None = None  # the link being read: path and text parts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "nav" and (self._sidebar_depth or "flex-auto" in attributes.get("class", "").split()):
            self._sidebar_depth += 1
        elif tag == "a":
            parts = urlsplit(attributes.get("href", ""))
            if parts.path.startswith(self.prefix):
                self._link = (parts.path.rstrip("/"), [])

    def handle_data(self, data: str) -> None:
        if self._link:
            self._link[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self._sidebar_depth:
            self._sidebar_depth -= 1
        elif tag == "a" and self._link:
            path, parts = self._link
            (self.sidebar if self._sidebar_depth else self.elsewhere).append(
                (path, " ".join("".join(parts).split()))
            )
            self._link = None


def doc_pages(index_html: str, library: str, hub_url: str) -> list[DocPage]:
    """The pages listed on a library's docs index page, sidebar first (or every link when it has none)."""
    parser = _DocLinks(f"/docs/{library}/")
    parser.feed(index_html)
    parser.close()
    pages: dict[str, DocPage] = {}
    for path, title in parser.sidebar or parser.elsewhere:
        pages.setdefault(path, DocPage(title=title or path.rsplit("/", 1)[-1], url=f"{hub_url}{path}"))
    return list(pages.values())


def query_terms(query: str) -> list[str]:
    """Lower-case words of two characters or more."""
    return [t for t in re.findall(r"[a-z0-9_]+", query.lower()) if len(t) > 1]


def relevance(page: DocPage, terms: list[str]) -> float:
    """Title hits weigh most; body hits count with diminishing returns; all terms present earns a bonus."""
    title, body = page.title.lower(), page.content.lower()
    score = sum(3.0 * (term in title) + min(body.count(term), 25) ** 0.5 for term in terms)
    everywhere = all(term in title or term in body for term in terms)
    return score + (2.0 if everywhere and score else 0.0)


def rank(pages: list[DocPage], query: str) -> list[DocPage]:
    """Pages that match the query, best first (stable for ties)."""
    terms = query_terms(query)
    scored = [(relevance(page, terms), position, page) for position, page in enumerate(pages)]
    return [page for score, _, page in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]


def glimpse(page: DocPage, query: str = "") -> str:
    """About 200 characters of the page, around the first query term it contains."""
    if page.error:
        return f"[could not fetch: {page.error}]"
    text = " ".join(page.content.split())
    lowered = text.lower()
    hits = [i for i in (lowered.find(t) for t in query_terms(query)) if i >= 0]
    start = max(0, min(hits) - 60) if hits else 0
    piece = text[start : start + GLIMPSE_CHARS]
    return ("…" if start else "") + piece + ("…" if start + GLIMPSE_CHARS < len(text) else "")


def format_pages(pages: list[DocPage], heading: str, query: str) -> str:
    """Numbered pages with URL and glimpse."""
    lines = [heading, ""]
    for number, page in enumerate(pages, 1):
        lines += [f"{number}. {page.title}", f"   {page.url}", f"   {glimpse(page, query)}"]
    lines += ["", "Read a page with fetch_hf_docs(url=...)."]
    return "\n".join(lines)
