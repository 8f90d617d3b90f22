"""Pure routing functions: what runs after each node, decided from state alone."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END

from ml_intern.graph.messages import pending_calls
from ml_intern.graph.state import AgentState


def route_after_compact(state: AgentState) -> Literal["call_model", "__end__"]:
    return END if state.get("stop_reason") else "call_model"


def route_after_call_model(state: AgentState) -> Literal["doom_check", "compact", "__end__"]:
    if state.get("stop_reason"):
        return END
    return "compact" if state.get("force_compact") else "doom_check"


def route_after_doom_check(state: AgentState) -> Literal["approval_interrupt", "compact", "__end__"]:
    if state.get("stop_reason"):
        return END
    if pending_calls(state["messages"]):
        return "approval_interrupt"
    return "compact"  # calls were answered without running, or a guard was added: let the model read it


def recursion_limit(max_iterations: int) -> int:
    """LangGraph's step backstop for `max_iterations` model calls (about five node steps a pass)."""
    return 5 * max_iterations + 10
