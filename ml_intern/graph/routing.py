"""Routing: what runs after each node. Decided from state, except where skipping a node needs the run's
services (whether a call needs approval, whether the context is over its threshold): a node that has nothing
to do is not run, so it writes no checkpoint."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END

from ml_intern.graph.context import current_context
from ml_intern.graph.messages import pending_calls
from ml_intern.graph.state import AgentState


def route_after_compact(state: AgentState) -> Literal["call_model", "__end__"]:
    return END if state.get("stop_reason") else "call_model"


def route_after_call_model(state: AgentState) -> Literal["doom_check", "compact", "__end__"]:
    if state.get("stop_reason"):
        return END
    return "compact" if state.get("force_compact") else "doom_check"


AfterDoomCheck = Literal["approval_interrupt", "execute_tools", "compact", "__end__"]
AfterExecuteTools = Literal["compact", "call_model"]


def full_path_after_doom_check(state: AgentState) -> AfterDoomCheck:
    """The route when nothing is skipped: what a synchronous state update `as_node` gets."""
    if state.get("stop_reason"):
        return END
    if not pending_calls(state["messages"]):
        return "compact"  # calls were answered without running, or a guard was added: let the model read it
    return "approval_interrupt"


def full_path_after_execute_tools(state: AgentState) -> AfterExecuteTools:
    return "compact"


async def route_after_doom_check(state: AgentState) -> AfterDoomCheck:
    from ml_intern.nodes.approval_interrupt import needs_a_decision

    route = full_path_after_doom_check(state)
    if route != "approval_interrupt":
        return route
    ctx = current_context()
    # Decisions left by a batch that never finished (a crash in execute_tools) must be replaced before any
    # call could be matched to them by id: approval_interrupt writes this batch's own.
    if ctx is None or state.get("approvals") or await needs_a_decision(state, ctx):
        return "approval_interrupt"
    return "execute_tools"


async def route_after_execute_tools(state: AgentState) -> AfterExecuteTools:
    """compact when it has work (or the turn stopped: compact ends it), else the next model call."""
    from ml_intern.nodes.compact import needs_compaction

    ctx = current_context()
    if ctx is None or state.get("stop_reason") or await needs_compaction(state, ctx):
        return "compact"
    return "call_model"


def recursion_limit(max_iterations: int) -> int:
    """LangGraph's step backstop for `max_iterations` model calls (three to five node steps a pass)."""
    return 5 * max_iterations + 10
