"""Pure checks on the transcript: repeating tool calls and stalled replies."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

from ml_intern.graph.messages import MARK, is_user_turn


def call_key(name: str, args: Any) -> str:
    """A tool call's identity: its name and canonical JSON arguments."""
    return name + json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)


def current_turn(messages: list[AnyMessage]) -> list[AnyMessage]:
    """The messages since the last message the user typed."""
    start = max((i for i, m in enumerate(messages) if is_user_turn(m)), default=-1)
    return messages[start + 1 :]


def executed_calls(messages: list[AnyMessage]) -> list[tuple[str, str]]:
    """(call key, result digest) of every call executed in the current turn, in order."""
    keys: dict[str, str] = {}
    executed = []
    for message in current_turn(messages):
        if isinstance(message, AIMessage):
            keys.update({c["id"]: call_key(c["name"], c["args"]) for c in message.tool_calls})
        elif isinstance(message, ToolMessage) and not message.additional_kwargs.get(MARK):
            digest = hashlib.sha1(str(message.content).encode()).hexdigest()
            executed.append((keys.get(message.tool_call_id, "?"), digest))
    return executed


def loop_continuation(history: list[tuple[str, str]]) -> str | None:
    """The call key that would continue a loop at the end of `history`, or None when there is no loop:
    three identical calls with identical results, or a cycle of 2-5 calls repeated twice."""
    if len(history) >= 3 and history[-1] == history[-2] == history[-3]:
        return history[-1][0]
    for length in range(2, 6):
        if len(history) >= 2 * length and history[-length:] == history[-2 * length : -length]:
            return history[-length][0]
    return None


def repeats_loop(messages: list[AnyMessage], reply: AIMessage) -> bool:
    """Whether `reply` proposes the next call of a loop the turn is already in."""
    expected = loop_continuation(executed_calls(messages[:-1]))
    return expected is not None and any(call_key(c["name"], c["args"]) == expected for c in reply.tool_calls)


def is_stalled(messages: list[AnyMessage], reply: AIMessage) -> bool:
    """An empty text reply, or the same text as the two replies before it in this turn."""
    text = reply.text.strip()
    if not text:
        return True
    replies = [
        m.text.strip() for m in current_turn(messages) if isinstance(m, AIMessage) and not m.tool_calls
    ]
    return len(replies) >= 3 and replies[-1] == replies[-2] == replies[-3]


def malformed_streak(messages: list[AnyMessage], tool: str) -> int:
    """How many replies in a row, before the latest, carried a malformed call to `tool`."""
    streak = 0
    for message in reversed(current_turn(messages)[:-1]):
        if not isinstance(message, AIMessage):
            continue
        if tool not in (message.additional_kwargs.get(MARK) or {}).get("malformed", []):
            break
        streak += 1
    return streak
