"""Turn opening: the graph inputs that start or continue a user turn, and the reset the entry node applies."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage

from ml_intern.graph.messages import is_user_turn
from ml_intern.secrets import redact


def new_turn(prompt: str) -> dict[str, Any]:
    """The graph input that starts a user turn (and resets the per-turn counters)."""
    return {"messages": [HumanMessage(content=redact(prompt))], **continue_turn()}


def turn_opening(state: dict[str, Any]) -> dict[str, Any]:
    """The per-turn reset when a user message has just arrived: clients that send only `messages`
    (LangGraph Studio, the SDK) get a fresh turn as the CLI's `new_turn` gives one."""
    messages = state.get("messages") or []
    if messages and is_user_turn(messages[-1]) and (state.get("stop_reason") or state.get("iterations")):
        return continue_turn()
    return {}


def continue_turn() -> dict[str, Any]:
    """The graph input that goes on with a turn that stopped at its iteration cap."""
    counters = dict.fromkeys(("iterations", "guards", "nudges", "continuations", "overflows"), 0)
    return {**counters, "force_compact": False, "stop_reason": None}
