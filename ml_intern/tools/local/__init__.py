"""Local tools: bash, read, write, edit, plan_tool and teachings; what each is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts
from ml_intern.tools.local.boundary import always, read_needs_approval, write_needs_approval
from ml_intern.tools.local.shell import needs_approval as bash_needs_approval

TOOL_FACTS = {
    "plan_tool": ToolFacts(effect="plan"),
    "teachings": ToolFacts(effect="nothing"),
    "bash": ToolFacts(effect="local files", approval=bash_needs_approval),
    "read": ToolFacts(effect="nothing", approval=read_needs_approval, always_ask=always),
    "write": ToolFacts(effect="local files", approval=write_needs_approval, always_ask=always),
    "edit": ToolFacts(effect="local files", approval=write_needs_approval, always_ask=always),
}
