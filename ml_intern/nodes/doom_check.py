"""doom_check: stop the model from repeating itself, and mark the end of a turn."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

from ml_intern.graph.events import emit
from ml_intern.graph.messages import MARK, guard_message, is_user_turn
from ml_intern.graph.state import AgentState

MAX_GUARDS = 2
DOOM_GUARD = (
    "You are repeating the same tool calls and getting the same results: this is a loop. "
    "Stop and change strategy: re-read the last results, try a different approach or tool, "
    "or explain to the user what is blocking you."
)
BLOCKED = "Not executed: this call repeats a loop of identical calls with identical results."


def call_key(name: str, args: dict[str, Any]) -> str:
    """A tool call's identity: its name and canonical JSON arguments."""
    return name + json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)


def executed_calls(messages: list[AnyMessage]) -> list[tuple[str, str]]:
    """(call key, result digest) of every call executed since the last user message, in order."""
    turn_start = max((i for i, m in enumerate(messages) if is_user_turn(m)), default=-1)
    keys: dict[str, str] = {}
    executed = []
    for message in messages[turn_start + 1 :]:
        if isinstance(message, AIMessage):
            keys.update({c["id"]: call_key(c["name"], c["args"]) for c in message.tool_calls})
        elif isinstance(message, ToolMessage) and not message.additional_kwargs.get(MARK):
            digest = hashlib.sha1(str(message.content).encode()).hexdigest()
            executed.append((keys.get(message.tool_call_id, "?"), digest))
    return executed


def loop_continuation(history: list[tuple[str, str]]) -> str | None:
    """The call key that would continue a loop at the end of `history`, or None when there is no loop."""
    if len(history) >= 3 and history[-1] == history[-2] == history[-3]:
        return history[-1][0]
    for length in range(2, 6):
        if len(history) >= 2 * length and history[-length:] == history[-2 * length : -length]:
            return history[-length][0]
    return None


def doom_check(state: AgentState) -> dict[str, Any]:
    """End the turn on a text reply; on a loop, block the repeating call and add a guard, then give up."""
    messages = state["messages"]
    reply = messages[-1]
    if not isinstance(reply, AIMessage) or not reply.tool_calls:
        return {"stop_reason": "end_turn"}
    expected = loop_continuation(executed_calls(messages))
    if expected is None or all(call_key(c["name"], c["args"]) != expected for c in reply.tool_calls):
        return {}
    guards = state.get("guards", 0)
    if guards >= MAX_GUARDS:
        emit(
            {
                "type": "error",
                "message": "The model kept repeating the same tool calls; the turn was stopped.",
            }
        )
        return {"stop_reason": "doom_loop", "messages": _blocked(reply)}
    emit(
        {
            "type": "tool_log",
            "tool": "doom_check",
            "text": "loop detected: asking the model to change strategy",
        }
    )
    return {"messages": [*_blocked(reply), guard_message("doom_loop", DOOM_GUARD)], "guards": guards + 1}


def _blocked(reply: AIMessage) -> list[ToolMessage]:
    return [
        ToolMessage(
            content=BLOCKED,
            tool_call_id=c["id"],
            name=c["name"],
            status="error",
            additional_kwargs={MARK: {"skipped": "doom_loop"}},
        )
        for c in reply.tool_calls
    ]
