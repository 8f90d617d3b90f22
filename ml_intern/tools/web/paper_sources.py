"""Where `hf_papers` finds a paper's full text: the Hub's Markdown (`HfApi.read_paper`), then arXiv HTML."""

from __future__ import annotations

import asyncio

from huggingface_hub import HfApi

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.http import fetch
from ml_intern.tools.hub.client import hub_call
from ml_intern.tools.web.paper_html import ParsedPaper, parse_paper_html
from ml_intern.tools.web.paper_markdown import parse_paper_markdown

CACHED_PAPERS = 16


class PaperSources:
    """Papers split into sections, with the URL each came from; the last few are kept."""

    def __init__(self, env: ToolEnv, api: HfApi) -> None:
        self.env, self.api = env, api
        self.html_sources = [u.rstrip("/") for u in env.config.papers.html_urls]
        self._parsed: dict[str, tuple[ParsedPaper, str]] = {}  # arxiv id -> parsed paper and its URL

    async def parsed(self, arxiv_id: str) -> tuple[ParsedPaper, str] | None:
        """The paper from the Hub's Markdown, else from the first HTML source that has it; None: neither."""
        if arxiv_id not in self._parsed:
            found = await self._hub_markdown(arxiv_id) or await self._arxiv_html(arxiv_id)
            if found is None:
                return None
            if len(self._parsed) >= CACHED_PAPERS:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[arxiv_id] = found
        return self._parsed[arxiv_id]

    async def _hub_markdown(self, arxiv_id: str) -> tuple[ParsedPaper, str] | None:
        try:
            text = await hub_call(
                self.api, lambda: self.api.read_paper(arxiv_id), f"reading paper {arxiv_id}"
            )
        except ToolError:  # not on the Hub, or no Markdown: the HTML sources may have it
            return None
        paper = await asyncio.to_thread(parse_paper_markdown, text)  # a long paper: off the event loop
        return (paper, f"{self.env.hf_endpoint}/papers/{arxiv_id}") if paper.sections else None

    async def _arxiv_html(self, arxiv_id: str) -> tuple[ParsedPaper, str] | None:
        for base in self.html_sources:
            response = await fetch(self.env, f"{base}/{arxiv_id}")
            if response.status_code == 200:
                paper = parse_paper_html(response.text)
                if paper.sections:
                    return paper, str(response.url)
        return None
