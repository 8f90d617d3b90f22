"""Run one turn of a thread: stream the graph, translate what it yields into events, report the outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from ml_intern.graph.accounting import turn_usage
from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import is_user_turn
from ml_intern.graph.routing import recursion_limit
from ml_intern.secrets import StreamRedactor, redact

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class TurnOutcome:
    """How a turn ended."""

    stop_reason: str  # end_turn, max_iterations, doom_loop, context_overflow, approval_required, ...
    final_response: str = ""  # the text of the last assistant message
    iterations: int = 0  # model calls made in the turn
    usage: dict[str, Any] = field(default_factory=dict)  # this turn's tokens and cost
    thread_usage: dict[str, Any] = field(default_factory=dict)  # the thread's totals
    approval: dict[str, Any] | None = None  # the interrupt payload when a human must approve calls


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


def resume_with(decisions: dict[str, Any]) -> Command:
    """The graph input that answers a pending approval (DESIGN.md resume value)."""
    return Command(resume=decisions)


def thread_config(thread_id: str, ctx: RunContext) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": recursion_limit(ctx.max_iterations)}


async def run_turn(
    app: Any, thread_id: str, graph_input: Any, ctx: RunContext, on_event: EventSink
) -> TurnOutcome:
    """Stream `graph_input` through the graph for `thread_id`, sending events to `on_event`."""
    config = thread_config(thread_id, ctx)
    streamed, redactor = False, StreamRedactor()
    try:
        async for mode, chunk in app.astream(
            graph_input, config, context=ctx, stream_mode=["messages", "custom"], durability="sync"
        ):
            if mode == "custom":
                if chunk.get("type") == "assistant_message" and (rest := redactor.flush()):
                    on_event({"type": "assistant_chunk", "content": rest})
                on_event(chunk)
            elif _is_reply_chunk(chunk) and chunk[0].text:
                streamed = True
                if text := redactor.feed(chunk[0].text):
                    on_event({"type": "assistant_chunk", "content": text})
    except GraphRecursionError:
        return await outcome(app, config, "recursion_limit")
    if rest := redactor.flush():
        on_event({"type": "assistant_chunk", "content": rest})
    if streamed:
        on_event({"type": "assistant_stream_end"})
    return await outcome(app, config)


def _is_reply_chunk(chunk: Any) -> bool:
    message, metadata = chunk
    return isinstance(message, AIMessageChunk) and metadata.get("langgraph_node") == "call_model"


async def outcome(app: Any, config: dict[str, Any], forced_reason: str | None = None) -> TurnOutcome:
    """Read the thread's saved state after a run."""
    snapshot = await app.aget_state(config)
    values = snapshot.values or {}
    approval = next((i.value for i in snapshot.interrupts if isinstance(i.value, dict)), None)
    reason = forced_reason or (
        "approval_required" if approval else values.get("stop_reason") or "interrupted"
    )
    replies = [m for m in values.get("messages", []) if isinstance(m, AIMessage)]
    return TurnOutcome(
        stop_reason=reason,
        final_response=replies[-1].text if replies else "",
        iterations=values.get("iterations", 0),
        usage=turn_usage(values),
        thread_usage=values.get("usage") or {},
        approval=approval,
    )
