"""The sandbox runtime: bash, read, write and edit run in a private Hugging Face Space of the user's, made for
the thread (its server is ours: `server.py`, with `Dockerfile`); `sandbox_create` asks for other hardware.

- `server.py`   the HTTP server that runs in the Space (stdlib only; also run by the tests on this machine)
- `Dockerfile`  its image (uploaded with the server into the Space)
- `spaces.py`   the Hub side: create the Space, read its stage and URL, delete it, list leftovers (blocking)
- `client.py`   the HTTP client of a running sandbox's server
- `manager.py`  the thread's sandbox: made on first use, replaced by `sandbox_create`, deleted at exit
- `rules.py`    approval and cost of the sandbox tools
- `tools.py`    the tools the model calls
"""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts
from ml_intern.tools.sandbox.rules import bash_needs_approval, create_cost, create_needs_approval

# Declared for the registry's family lookup (names no other family uses).
TOOL_FACTS = {
    "sandbox_create": ToolFacts(
        effect="sandbox",
        approval=create_needs_approval,  # paid hardware: asked with its price
        cost=create_cost,  # its price × sandbox.max_hours: the yolo cap and the turn's budget
        targets=("hardware",),
        hidden=frozenset({"trackio_space_id", "trackio_project"}),  # the original's, taken, not shown
    ),
}
# The tools that take the local ones' names in the sandbox runtime (tools/registry.py `tool_facts`): what
# they change is in the sandbox, which undo lists and cannot put back.
SANDBOX_FACTS = {
    "bash": ToolFacts(effect="sandbox", approval=bash_needs_approval),
    "read": ToolFacts(effect="nothing"),
    "write": ToolFacts(effect="sandbox", targets=("path",)),
    "edit": ToolFacts(effect="sandbox", targets=("path",)),
    **TOOL_FACTS,
}
