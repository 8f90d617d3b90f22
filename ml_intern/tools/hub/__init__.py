"""Hub tools: search, repo details, repo files and git-like operations; what each is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts, operation_of
from ml_intern.tools.hub import repo, repo_git

TOOL_FACTS = {
    "hub_repo_search": ToolFacts(effect="nothing"),
    "hub_repo_details": ToolFacts(effect="nothing"),
    "hf_repo_files": ToolFacts(
        effect="remote repo",
        read_only_operations=frozenset({"list", "read"}),
        approval=repo.needs_approval,
        targets=("repo_type", "repo_id", "path"),
        hidden=frozenset({"max_chars"}),  # the original's read cap; ours pages with offset/limit
    ),
    "hf_repo_git": ToolFacts(
        effect="remote repo",
        read_only_operations=frozenset(operation_of({"operation": op}) for op in repo_git.READ_ONLY),
        approval=repo_git.needs_approval,
        targets=("repo_type", "repo_id", "branch", "tag", "pr_num"),
        # The original's names and its change_pr_status operation (tools/checked.py): taken, not shown.
        aliases={"from_rev": "revision", "tag_message": "description"},
        hidden=frozenset({"change_pr_status", "new_status"}),
    ),
}
