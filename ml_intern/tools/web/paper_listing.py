"""Text for the model from Hub paper, model, dataset and collection records."""

from __future__ import annotations

import re
from typing import Any

from ml_intern.tools.web.paper_html import ParsedPaper

SUMMARY_CHARS = 300
PREVIEW_CHARS = 160


def normalise_arxiv_id(value: str) -> str:
    """'https://arxiv.org/abs/2305.18290v2' or 'arxiv:2305.18290' -> '2305.18290'."""
    identifier = value.strip().rstrip("/").rsplit("/", 1)[-1].removesuffix(".pdf")
    identifier = re.sub(r"^arxiv:", "", identifier, flags=re.IGNORECASE)
    return re.sub(r"v\d+$", "", identifier)


def shorten(text: str | None, limit: int) -> str:
    """One line of at most `limit` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _published(paper: Any) -> str:
    published = getattr(paper, "published_at", None)
    return published.date().isoformat() if published else ""


def _github(paper: Any) -> str:
    repo = getattr(paper, "github_repo", None)
    return f"{repo} ({getattr(paper, 'github_stars', None) or 0} stars)" if repo else ""


def format_paper_list(papers: list[Any], heading: str, hub_url: str) -> str:
    """A numbered list of papers with id, votes, date, code link and a short summary."""
    lines = [f"# {heading} ({len(papers)})", ""]
    for number, paper in enumerate(papers, 1):
        meta = [f"arxiv_id: {paper.id}", f"upvotes: {paper.upvotes or 0}", _published(paper)]
        lines += [f"{number}. {paper.title}", "   " + " | ".join(m for m in meta if m)]
        lines.append(f"   {hub_url}/papers/{paper.id}")
        if _github(paper):
            lines.append(f"   GitHub: {_github(paper)}")
        summary = getattr(paper, "ai_summary", None) or paper.summary
        if summary:
            lines.append(f"   {shorten(summary, SUMMARY_CHARS)}")
    lines += ["", "Next: read_paper or find_all_resources with an arxiv_id."]
    return "\n".join(lines)


def format_paper_details(paper: Any, hub_url: str) -> str:
    """Metadata, AI summary and abstract of one paper."""
    authors = [a.name for a in (paper.authors or []) if getattr(a, "name", None)]
    lines = [
        f"# {paper.title}",
        f"arxiv_id: {paper.id} | upvotes: {paper.upvotes or 0} | published: {_published(paper) or '?'}",
        f"{hub_url}/papers/{paper.id} | https://arxiv.org/abs/{paper.id}",
    ]
    if authors:
        more = f" (+{len(authors) - 10} more)" if len(authors) > 10 else ""
        lines.append("Authors: " + ", ".join(authors[:10]) + more)
    if paper.ai_keywords:
        lines.append("Keywords: " + ", ".join(paper.ai_keywords[:12]))
    if _github(paper):
        lines.append(f"GitHub: {_github(paper)}")
    if getattr(paper, "project_page", None):
        lines.append(f"Project page: {paper.project_page}")
    if paper.ai_summary:
        lines += ["", "## AI summary", paper.ai_summary]
    if paper.summary:
        lines += ["", "## Abstract", paper.summary.strip()]
    lines += ["", "Next: read_paper for sections, find_all_resources for linked models/datasets."]
    return "\n".join(lines)


def format_contents(paper: ParsedPaper, arxiv_id: str, source_url: str) -> str:
    """Abstract plus the list of sections with a short preview of each."""
    lines = [f"# {paper.title or arxiv_id}", source_url, ""]
    if paper.abstract:
        lines += ["## Abstract", paper.abstract, ""]
    lines.append("## Sections")
    for section in paper.sections:
        indent = "  " * (section.level - 2)
        preview = shorten(section.text.removeprefix(section.title), PREVIEW_CHARS) or "(empty)"
        lines.append(f"{indent}- {section.title} [{len(section.text):,} chars]: {preview}")
    lines += ["", "Read one with section='<number or title>' (e.g. section='4' or section='Experiments')."]
    return "\n".join(lines)


def format_models(models: list[Any], arxiv_id: str, sort: str) -> str:
    """Models linked to a paper."""
    lines = [f"# Models citing arxiv:{arxiv_id} ({len(models)}, by {sort})", ""]
    for number, model in enumerate(models, 1):
        meta = [f"downloads: {model.downloads or 0:,}", f"likes: {model.likes or 0}"]
        meta += [m for m in (model.pipeline_tag, getattr(model, "library_name", None)) if m]
        lines.append(f"{number}. {model.id} — " + " | ".join(meta))
    return "\n".join(lines)


def format_datasets(datasets: list[Any], arxiv_id: str, sort: str) -> str:
    """Datasets linked to a paper."""
    lines = [f"# Datasets citing arxiv:{arxiv_id} ({len(datasets)}, by {sort})", ""]
    for number, dataset in enumerate(datasets, 1):
        lines.append(
            f"{number}. {dataset.id} — downloads: {dataset.downloads or 0:,} | likes: {dataset.likes or 0}"
        )
        if getattr(dataset, "description", None):
            lines.append(f"   {shorten(dataset.description, 200)}")
    if datasets:
        lines += ["", f"Inspect one with hf_inspect_dataset(dataset='{datasets[0].id}')."]
    return "\n".join(lines)


def format_collections(collections: list[Any], arxiv_id: str, hub_url: str) -> str:
    """Collections that include a paper."""
    lines = [f"# Collections with arxiv:{arxiv_id} ({len(collections)})", ""]
    for number, collection in enumerate(collections, 1):
        owner = collection.owner.get("name", "") if isinstance(collection.owner, dict) else collection.owner
        lines.append(f"{number}. {collection.title} — by {owner} | upvotes: {collection.upvotes or 0}")
        lines.append(f"   {hub_url}/collections/{collection.slug}")
        if collection.description:
            lines.append(f"   {shorten(collection.description, 200)}")
    return "\n".join(lines)
