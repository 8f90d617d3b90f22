"""Web research tools: papers, HF docs, web search, GitHub; what each is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts

READS_ONLY = ToolFacts(effect="nothing")
TOOL_FACTS = dict.fromkeys(
    (
        "hf_papers",
        "explore_hf_docs",
        "fetch_hf_docs",
        "web_search",
        "github_find_examples",
        "github_list_repos",
        "github_read_file",
    ),
    READS_ONLY,
)
