"""Hugging Face docs as the original reads them: a library's sidebar of pages, their markdown, ranked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

GLIMPSE_CHARS = 200
# The original's documentation sources (its endpoint enum): huggingface.co/docs/<slug>; gradio: llms.txt.
DOC_SOURCES = (
    "hub", "transformers", "diffusers", "datasets", "gradio", "trackio", "smolagents", "huggingface_hub",
    "huggingface.js", "transformers.js", "inference-providers", "inference-endpoints", "peft", "accelerate",
    "optimum", "tokenizers", "courses", "evaluate", "tasks", "dataset-viewer", "trl", "simulate", "sagemaker",
    "timm", "safetensors", "tgi", "setfit", "lerobot", "autotrain", "tei", "bitsandbytes",
    "sentence_transformers", "chat-ui", "leaderboards", "lighteval", "argilla", "distilabel",
    "microsoft-azure", "kernels", "google-cloud",
)  # fmt: skip


@dataclass
class DocPage:
    """One page of a library's docs."""

    title: str
    url: str  # the page URL; its markdown lives at url + ".md"
    content: str = ""  # markdown, once fetched
    error: str = ""  # why the markdown could not be fetched


def doc_pages(index_html: str, library: str, hub_url: str) -> list[DocPage]:
    """The pages listed in a library's docs sidebar (`<nav class="flex-auto">`), or every link without one."""
    from bs4 import BeautifulSoup  # loaded with the first docs index, not at start

    soup = BeautifulSoup(index_html, "html.parser")
    prefix = f"/docs/{library}/"
    pages: dict[str, DocPage] = {}
    for links in (soup.select("nav.flex-auto a[href]"), soup.find_all("a", href=True)):
        for link in links:
            path = urlsplit(str(link["href"])).path.rstrip("/")
            if path.startswith(prefix):
                title = " ".join(link.get_text(" ").split()) or path.rsplit("/", 1)[-1]
                pages.setdefault(path, DocPage(title=title, url=f"{hub_url}{path}"))
        if pages:
            break
    return list(pages.values())


def markdown_sections(text: str, url: str) -> list[DocPage]:
    """A Markdown document (such as Gradio's llms.txt) cut at its level 1-2 headings outside code blocks."""
    sections: list[DocPage] = []
    title, lines, fenced = "Introduction", [], False
    for line in text.split("\n") + ["# "]:  # the sentinel heading closes the last section
        fenced ^= line.lstrip().startswith("```")
        if not fenced and re.match(r"#{1,2} ", line):
            if "".join(lines).strip():
                sections.append(DocPage(title=title[:120], url=url, content="\n".join(lines).strip()))
            title, lines = line.lstrip("#").strip(), []
        lines.append(line)
    return sections


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
