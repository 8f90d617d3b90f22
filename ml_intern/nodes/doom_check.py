"""doom_check: inspect the model's reply — end the turn, or catch loops, stalls and broken tool calls."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.messages.tool import tool_call

from ml_intern.graph import events
from ml_intern.graph.events import emit
from ml_intern.graph.loops import is_stalled, malformed_streak, repeats_loop
from ml_intern.graph.messages import MARK, guard_message
from ml_intern.graph.state import AgentState
from ml_intern.tools.local.plan import current_plan, unfinished

MAX_GUARDS = 2  # loop guards before the turn is stopped
MAX_NUDGES = 1  # stall nudges before the turn is stopped
MAX_CONTINUATIONS = 2  # re-prompts of a text reply that leaves plan items unfinished
DOOM_GUARD = (
    "You are repeating the same tool calls and getting the same results: this is a loop. "
    "Stop and change strategy: re-read the last results, try a different approach or tool, "
    "or explain to the user what is blocking you."
)
STALL_GUARD = (
    "Your last reply was empty or repeated itself. Continue the task with a concrete next step, "
    "or give the user your final answer."
)
CONTINUE_GUARD = (
    "Your plan still has unfinished items: {items}. Continue working on them, or update the plan "
    "(plan_tool) to say why they are done or no longer needed, then give your final answer."
)
BLOCKED = "Not executed: this call repeats a loop of identical calls with identical results."
TRUNCATED = (
    "Not executed: your reply hit the output length limit, so this call's arguments were cut off. "
    "Split the work: write large files in parts (write, then edit to append) and keep each call small."
)
MALFORMED = (
    "Not executed: the arguments of this {tool} call were not valid JSON ({error}). "
    "Retry with valid, smaller arguments."
)
MALFORMED_AGAIN = (
    " This is a repeated failure: change strategy (e.g. write big content to a file in smaller steps)."
)


def skipped(call: dict[str, Any], text: str, why: str) -> ToolMessage:
    """An answer to a call that was not run (marked, so loop detection ignores it)."""
    return ToolMessage(
        content=text,
        tool_call_id=call["id"],
        name=call["name"],
        status="error",
        additional_kwargs={MARK: {"skipped": why}},
    )


def doom_check(state: AgentState) -> dict[str, Any]:
    """Decide what the latest reply leads to; guards and skipped calls go into the transcript."""
    messages = state["messages"]
    reply = messages[-1]
    if not isinstance(reply, AIMessage):
        return {}
    if reply.invalid_tool_calls or unparseable_calls(reply):
        return _malformed(state, reply)
    if not reply.tool_calls:
        return _text_reply(state, reply)
    if (reply.response_metadata or {}).get("finish_reason") == "length":
        lost = ", ".join(c["name"] for c in reply.tool_calls)
        emit(events.notice("doom_check", f"reply truncated: dropped {lost}"))
        return {"messages": [skipped(c, TRUNCATED, "truncated") for c in reply.tool_calls]}
    if repeats_loop(messages, reply):
        return _loop(state, reply)
    return {}


def _text_reply(state: AgentState, reply: AIMessage) -> dict[str, Any]:
    if not is_stalled(state["messages"], reply):
        return _unfinished_plan(state) or {"stop_reason": "end_turn"}
    nudges = state.get("nudges", 0)
    if nudges >= MAX_NUDGES:
        emit(events.error("The model stalled (empty or repeated replies); the turn was stopped."))
        return {"stop_reason": "stalled"}
    return {"messages": [guard_message("stall", STALL_GUARD)], "nudges": nudges + 1}


def _unfinished_plan(state: AgentState) -> dict[str, Any] | None:
    """Re-prompt (at most twice a turn) a final answer given while plan items remain open."""
    items = unfinished(current_plan(state["messages"]))
    continuations = state.get("continuations", 0)
    if not items or continuations >= MAX_CONTINUATIONS:
        return None
    text = CONTINUE_GUARD.format(items="; ".join(items[:5]))
    return {"messages": [guard_message("continuation", text)], "continuations": continuations + 1}


def _loop(state: AgentState, reply: AIMessage) -> dict[str, Any]:
    blocked = [skipped(c, BLOCKED, "doom_loop") for c in reply.tool_calls]
    guards = state.get("guards", 0)
    if guards >= MAX_GUARDS:
        emit(events.error("The model kept repeating the same tool calls; the turn was stopped."))
        return {"stop_reason": "doom_loop", "messages": blocked}
    emit(events.notice("doom_check", "loop detected: asking the model to change strategy"))
    return {"messages": [*blocked, guard_message("doom_loop", DOOM_GUARD)], "guards": guards + 1}


def unparseable_calls(reply: AIMessage) -> dict[str, str]:
    """Call id -> JSON error for streamed calls whose raw arguments do not parse (langchain closes cut-off
    JSON when it merges chunks, so `tool_calls` alone would run half-written arguments)."""
    bad = {}
    for raw in reply.additional_kwargs.get("tool_calls") or []:
        raw = raw.model_dump() if hasattr(raw, "model_dump") else raw
        arguments = (raw.get("function") or {}).get("arguments") if isinstance(raw, dict) else None
        if isinstance(arguments, str) and arguments.strip():
            try:
                json.loads(arguments)
            except ValueError as exc:
                bad[raw.get("id")] = f"{exc.msg} at character {exc.pos}"
    return bad


def _malformed(state: AgentState, reply: AIMessage) -> dict[str, Any]:
    """Turn unparseable calls into answered calls, so the model reads why they did not run."""
    streamed = unparseable_calls(reply)
    invalid = [*reply.invalid_tool_calls, *(c for c in reply.tool_calls if c["id"] in streamed)]
    bad = [
        tool_call(name=c.get("name") or "unknown", args={}, id=c.get("id") or f"invalid-{i}")
        for i, c in enumerate(invalid)
    ]
    errors = [
        str(c.get("error") or streamed.get(c.get("id")) or "unparseable arguments")[:200] for c in invalid
    ]
    answers = []
    for call, error in zip(bad, errors, strict=True):
        text = MALFORMED.format(tool=call["name"], error=error)
        if malformed_streak(state["messages"], call["name"]) >= 1:
            text += MALFORMED_AGAIN
        answers.append(skipped(call, text, "malformed"))
    fixed = reply.model_copy(
        update={
            "tool_calls": [*(c for c in reply.tool_calls if c["id"] not in streamed), *bad],
            "invalid_tool_calls": [],
            "additional_kwargs": {**reply.additional_kwargs, MARK: {"malformed": [c["name"] for c in bad]}},
        }
    )
    emit(events.notice("doom_check", f"malformed tool call arguments: {', '.join(errors)}"))
    return {"messages": [fixed, *answers]}
