"""Remote effects: what a rewound stretch of a thread changed outside the working directory (Hub repos, jobs),
which undo cannot reverse and lists instead. What each call changes is its tool family's declaration."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from ml_intern.tools.base import Runtime
from ml_intern.tools.registry import call_effect, tool_facts

REMOTE = ("remote repo", "job", "message", "sandbox")  # effects outside this machine (a notification sent)
URL = re.compile(r"https?://[^\s'\"<>]+")


def remote_effects(messages: list[BaseMessage], tool_runtime: Runtime = "local") -> list[str]:
    """Hub uploads and deletions, repos, refs and PRs changed, jobs launched, sandbox files changed (a thread
    of the sandbox runtime): with URLs from their results."""
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    calls = [call for m in messages if isinstance(m, AIMessage) for call in m.tool_calls]
    return [
        effect for call in calls if (effect := describe_effect(call, results.get(call["id"]), tool_runtime))
    ]


def describe_effect(
    call: dict[str, Any], result: ToolMessage | None, tool_runtime: Runtime = "local"
) -> str | None:
    """One line naming the call and what it changed, or None when it changed nothing remote (or failed)."""
    args = call.get("args") or {}
    if call_effect(call["name"], args, tool_runtime) not in REMOTE:
        return None
    if result is not None and result.status == "error":
        return None
    named = ("operation", *tool_facts(call["name"], tool_runtime).targets)
    what = " ".join([call["name"], *(str(args[key]) for key in named if args.get(key))])
    if call_effect(call["name"], args, tool_runtime) == "sandbox":
        what += " (in the sandbox: not put back)"
    if result is None:
        return f"{what} (no result was recorded: check whether it ran)"
    urls = list(dict.fromkeys(url.rstrip(".,;:)") for url in URL.findall(str(result.content))))
    return f"{what}: {' '.join(urls[:3])}" if urls else what
