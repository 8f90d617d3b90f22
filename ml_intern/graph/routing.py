"""Routing: what runs after each node. Decided from state, except where skipping a node needs the run's
services (whether a call needs approval, whether the context is over its threshold): a node that has nothing
to do is not run, so it writes no checkpoint."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.config import get_config
from langgraph.graph import END
from langgraph.runtime import get_runtime

from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import pending_calls
from ml_intern.graph.state import AgentState


def route_after_compact(state: AgentState) -> Literal["call_model", "__end__"]:
    return END if state.get("stop_reason") else "call_model"


def route_after_call_model(state: AgentState) -> Literal["doom_check", "compact", "__end__"]:
    if state.get("stop_reason"):
        return END
    return "compact" if state.get("force_compact") else "doom_check"


async def route_after_doom_check(
    state: AgentState,
) -> Literal["approval_interrupt", "execute_tools", "compact", "__end__"]:
    from ml_intern.nodes.approval_interrupt import needs_a_decision

    if state.get("stop_reason"):
        return END
    if not pending_calls(state["messages"]):
        return "compact"  # calls were answered without running, or a guard was added: let the model read it
    run = in_a_run()
    if run is None or await needs_a_decision(state, run.context or RunContext()):
        return "approval_interrupt"
    return "execute_tools"


async def route_after_execute_tools(state: AgentState) -> Literal["compact", "call_model"]:
    """compact when it has work (or the turn stopped: compact ends it), else the next model call."""
    from ml_intern.nodes.compact import needs_compaction

    run = in_a_run()
    if run is None or state.get("stop_reason") or await needs_compaction(state, run.context):
        return "compact"
    return "call_model"


def in_a_run() -> Any:
    """The run's Runtime; None when LangGraph routes outside a run (a state update `as_node`, from the CLI or
    Studio): the routers then take the full path, as if every node had work."""
    try:
        get_config()
    except RuntimeError:
        return None
    return get_runtime()


def recursion_limit(max_iterations: int) -> int:
    """LangGraph's step backstop for `max_iterations` model calls (three to five node steps a pass)."""
    return 5 * max_iterations + 10
