"""`/status`: turns, tokens and cost of a thread, read from its saved state; where the run's tools run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml_intern.graph.accounting import turn_usage
from ml_intern.graph.messages import is_user_turn
from ml_intern.session.threads import thread_config


@dataclass
class ThreadStatus:
    """What `/status` reports about a thread."""

    thread_id: str
    turns: int  # messages the user typed
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None  # None: some call's price is unknown
    context_tokens: int  # size of the latest prompt: what compaction watches
    compactions: int
    turn_usage: dict[str, Any] = field(default_factory=dict)  # tokens and cost of the latest turn
    # Where the tools run: {"runtime": "local"}, or the sandbox manager's status() (tools/sandbox/manager.py)
    tools: dict[str, Any] = field(default_factory=lambda: {"runtime": "local"})


async def thread_status(app: Any, thread_id: str, tools: dict[str, Any]) -> ThreadStatus:
    """Turns, token totals and cost of `thread_id`; `tools`: where the run's tools run (its sandbox)."""
    snapshot = await app.aget_state(thread_config(thread_id))
    values = snapshot.values or {}
    usage = values.get("usage") or {}
    return ThreadStatus(
        thread_id=thread_id,
        turns=sum(1 for m in values.get("messages", []) if is_user_turn(m)),
        input_tokens=usage.get("input_tokens", 0),
        output_tokens=usage.get("output_tokens", 0),
        cached_tokens=usage.get("cached_tokens", 0),
        cost_usd=usage.get("cost_usd", 0.0 if not usage else None),
        context_tokens=values.get("context_tokens", 0),
        compactions=usage.get("compactions", 0),
        turn_usage=turn_usage(values),
        tools=tools,
    )
