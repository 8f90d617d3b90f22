"""Assemble the agent graph (DESIGN.md "The graph")."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableLambda
from langgraph.graph import START, StateGraph

from ml_intern.graph.context import RunContext
from ml_intern.graph.routing import (
    full_path_after_doom_check,
    full_path_after_execute_tools,
    route_after_call_model,
    route_after_compact,
    route_after_doom_check,
    route_after_execute_tools,
)
from ml_intern.graph.state import AgentState
from ml_intern.nodes.approval_interrupt import approval_interrupt
from ml_intern.nodes.call_model import call_model
from ml_intern.nodes.compact import compact
from ml_intern.nodes.doom_check import doom_check
from ml_intern.nodes.execute_tools import execute_tools


def build_graph(checkpointer: Any = None) -> Any:
    """compact → call_model → doom_check → [approval_interrupt] → execute_tools → [compact] → call_model ...

    approval_interrupt runs only when a pending call needs a decision, compact (mid-turn) only when the
    context is over its threshold: three checkpoints a model call instead of five."""
    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("compact", compact)
    graph.add_node("call_model", call_model)
    graph.add_node("doom_check", doom_check)
    graph.add_node("approval_interrupt", approval_interrupt)
    graph.add_node("execute_tools", execute_tools)
    graph.add_edge(START, "compact")
    graph.add_conditional_edges("compact", route_after_compact)
    graph.add_conditional_edges("call_model", route_after_call_model)
    # Each router with its synchronous full path, for a synchronous state update `as_node` (the async graph
    # itself always takes the async route).
    after_doom_check = RunnableLambda(full_path_after_doom_check, route_after_doom_check)
    graph.add_conditional_edges("doom_check", after_doom_check)
    graph.add_edge("approval_interrupt", "execute_tools")
    graph.add_conditional_edges(
        "execute_tools", RunnableLambda(full_path_after_execute_tools, route_after_execute_tools)
    )
    return graph.compile(checkpointer=checkpointer, name="ml-intern")


def make_graph() -> Any:
    """The graph for `langgraph dev` / Studio, which brings its own checkpointer."""
    return build_graph()
