"""Web research tools: papers, HF docs, web search, GitHub; what each is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts

READS_ONLY = ToolFacts(effect="nothing")
TOOL_FACTS = dict.fromkeys(
    (
        "explore_hf_docs",
        "fetch_hf_docs",
        "find_hf_api",
        "github_list_repos",
        "github_read_file",
    ),
    READS_ONLY,
)
# The original ml-intern's argument names (tools/checked.py): accepted, not shown in the prompt.
TOOL_FACTS["web_search"] = ToolFacts(
    effect="nothing", aliases={"allowed_domains": "include_domains", "blocked_domains": "exclude_domains"}
)
TOOL_FACTS["github_find_examples"] = ToolFacts(effect="nothing", hidden=frozenset({"min_score"}))
# Rarely used: named in the description, accepted, not in the schema (tools/checked.py).
TOOL_FACTS["hf_papers"] = ToolFacts(
    effect="nothing",
    hidden=frozenset(
        {"date", "sort", "offset", "date_from", "date_to", "categories", "min_citations", "sort_by"}
        | {"positive_ids", "negative_ids"}
    ),
)
