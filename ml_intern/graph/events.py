"""Events streamed to the front-ends and Studio: one constructor per type (DESIGN.md "CLI", stream-json).

Every event is a JSON-ready dict with a "type"; nothing else in the package writes an event dict by hand.
`emit` sends one to the graph's custom stream from inside a node or a tool; the session hands the rest to
the front-end directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ml_intern.secrets import redact_value

Event = dict[str, Any]
EventSink = Callable[[Event], None]

# What a tool call goes through (tool_state_change): approval, then running, then how it ended.
CallState = Literal[
    "approved",
    "rejected",
    "running",
    "completed",
    "failed",
    "cancelled",
    "abandoned",
    "interrupted",
    "billing_required",
]


def emit(event: Event) -> None:
    """Send `event` to the graph's custom stream; a no-op outside a graph run."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except (RuntimeError, KeyError):  # called outside a graph run
        return
    writer(redact_value(event))


# ---- a session's life ------------------------------------------------------------------------------


def thread_started(thread_id: str, model: str) -> Event:
    return {"type": "thread_started", "thread_id": thread_id, "model": model}


def ready(thread_id: str, model: str, tool_count: int, workdir: str, tool_runtime: str = "local") -> Event:
    """The session is open and its tools are known (and where they run): the front-end may take input."""
    return {
        "type": "ready",
        "thread_id": thread_id,
        "model": model,
        "tool_count": tool_count,
        "workdir": workdir,
        "tool_runtime": tool_runtime,
    }


def new_complete(thread_id: str, previous_thread_id: str, previous_turns: int) -> Event:
    """`/new`: a fresh thread replaced the current one."""
    return {
        "type": "new_complete",
        "thread_id": thread_id,
        "previous_thread_id": previous_thread_id,
        "previous_turns": previous_turns,
    }


def resume_complete(thread_id: str, model: str, turns: int, pending_approval: bool) -> Event:
    """A stored thread was opened to go on with."""
    return {
        "type": "resume_complete",
        "thread_id": thread_id,
        "model": model,
        "turns": turns,
        "pending_approval": pending_approval,
    }


def undo_complete(**report: Any) -> Event:
    """An undo finished: what was rewound, restored and not restored (fields of the undo report)."""
    return {"type": "undo_complete", **report}


def shutdown() -> Event:
    return {"type": "shutdown"}


# ---- a turn -----------------------------------------------------------------------------------------


def processing(iteration: int) -> Event:
    """A model call is about to be made (the turn's `iteration`-th)."""
    return {"type": "processing", "iteration": iteration}


def assistant_chunk(content: str) -> Event:
    return {"type": "assistant_chunk", "content": content}


def assistant_stream_end() -> Event:
    return {"type": "assistant_stream_end"}


def assistant_message(content: str, tool_calls: int) -> Event:
    return {"type": "assistant_message", "content": content, "tool_calls": tool_calls}


def tool_call(call_id: str, tool: str, args: dict[str, Any]) -> Event:
    return {"type": "tool_call", "id": call_id, "tool": tool, "args": args}


def tool_output(call_id: str, tool: str, output: str, success: bool) -> Event:
    return {"type": "tool_output", "id": call_id, "tool": tool, "output": output, "success": success}


def tool_log(tool: str, text: str) -> Event:
    """A progress line from a running tool (job logs, bash output, research steps)."""
    return {"type": "tool_log", "tool": tool, "text": text}


def progress(tool: str, text: str) -> Event:
    """A tool's progress the user should see even headless (a sandbox being built): a `tool_log` marked
    `progress`, which headless text prints on stderr; the chat flashes it as any tool_log."""
    return {**tool_log(tool, text), "progress": True}


def notice(source: str, text: str) -> Event:
    """A message from the agent itself (budget, MCP start-up, retries, guards, snapshots) that the user
    should see and keep: a `tool_log` marked `notice`, which the chat prints instead of flashing it."""
    return {"type": "tool_log", "tool": source, "text": text, "notice": True}


def tool_state_change(call_id: str, tool: str, state: CallState, **detail: Any) -> Event:
    """A call moved to `state`; `detail` adds what is known (e.g. a job's URL)."""
    return {"type": "tool_state_change", "id": call_id, "tool": tool, "state": state, **detail}


def pending_call(call: dict[str, Any], reason: str, always_ask: bool) -> Event:
    """One call of an approval request; `always_ask`: no blanket approval (/yolo, auto) may approve it."""
    fields = {key: call[key] for key in ("id", "name", "args")}
    return {**fields, "reason": reason, "always_ask": always_ask}


def approval_request(tool_calls: list[Event]) -> Event:
    """The approval interrupt's payload (DESIGN.md "Approval protocol"): the calls a human must decide."""
    return {"type": "approval", "tool_calls": tool_calls}


def approval_required(tool_calls: list[dict[str, Any]]) -> Event:
    """Calls wait for a human (the interrupt payload's calls, `always_ask` included)."""
    return {"type": "approval_required", "tool_calls": tool_calls, "count": len(tool_calls)}


def plan_update(plan: list[dict[str, Any]]) -> Event:
    """plan_tool changed the plan: its items, each with `content` and `status`."""
    return {"type": "plan_update", "plan": plan}


def llm_call(
    model: str, kind: str, latency_ms: int, finish_reason: str | None, usage: dict[str, Any]
) -> Event:
    """One model call finished: `kind` main, research or compaction; its tokens (cache included) and cost."""
    keys = ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "cost_usd")
    fields = {key: usage.get(key) for key in keys}
    return {
        "type": "llm_call",
        "model": model,
        "kind": kind,
        "latency_ms": latency_ms,
        "finish_reason": finish_reason,
        **fields,
    }


def compacted(tokens_before: int, tokens_after: int) -> Event:
    return {"type": "compacted", "tokens_before": tokens_before, "tokens_after": tokens_after}


def error(message: str) -> Event:
    return {"type": "error", "message": message}


def turn_complete(
    thread_id: str,
    final_response: str,
    stop_reason: str,
    iterations: int,
    usage: dict[str, Any],
    cost_usd: float | None,
) -> Event:
    """The turn ended (the same fields as the `json` output format)."""
    return {
        "type": "turn_complete",
        "thread_id": thread_id,
        "final_response": final_response,
        "stop_reason": stop_reason,
        "iterations": iterations,
        "usage": usage,
        "cost_usd": cost_usd,
    }


def interrupted(thread_id: str, stopped_calls: int) -> Event:
    return {"type": "interrupted", "thread_id": thread_id, "stopped_calls": stopped_calls}
