"""Local tools: `bash`, `read`, `write`, `edit` and `plan_tool`; what each is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts
from ml_intern.tools.local.shell import needs_approval as bash_needs_approval

TOOL_FACTS = {
    "plan_tool": ToolFacts(effect="plan"),
    "bash": ToolFacts(effect="local files", approval=bash_needs_approval),
    "read": ToolFacts(effect="nothing"),
    "write": ToolFacts(effect="local files"),
    "edit": ToolFacts(effect="local files"),
}
