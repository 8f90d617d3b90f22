"""Message conventions: guard markers, turn boundaries, and the view of the transcript sent to the model."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

MARK = "ml_intern"  # key in additional_kwargs holding our own annotations


def guard_message(kind: str, text: str) -> HumanMessage:
    """A message the agent adds to steer the model (doom loop, continuation...): never a user turn."""
    return HumanMessage(content=text, additional_kwargs={MARK: {"guard": kind}})


def is_guard(message: AnyMessage) -> bool:
    return bool(message.additional_kwargs.get(MARK, {}).get("guard"))


def is_user_turn(message: AnyMessage) -> bool:
    """A message the user typed (not a guard, not a compaction summary)."""
    return isinstance(message, HumanMessage) and not message.additional_kwargs.get(MARK)


def tool_result(call: dict[str, Any], text: str, status: str = "success") -> ToolMessage:
    """The answer to one tool call."""
    return ToolMessage(content=text, tool_call_id=call["id"], name=call["name"], status=status)


def pending_calls(messages: list[AnyMessage]) -> list[dict[str, Any]]:
    """Tool calls of the latest assistant message that have no result yet."""
    answered: set[str] = set()
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            answered.add(message.tool_call_id)
        elif isinstance(message, AIMessage):
            return [call for call in message.tool_calls if call["id"] not in answered]
        else:
            return []
    return []


NOT_EXECUTED = "Not executed: the turn was interrupted before this call ran. Re-run it if it is still needed."


def model_view(messages: list[AnyMessage]) -> list[AnyMessage]:
    """The transcript as the model must see it: every tool call answered before the next message."""
    view: list[AnyMessage] = []
    open_calls: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            open_calls = [call for call in open_calls if call["id"] != message.tool_call_id]
        else:
            view.extend(tool_result(call, NOT_EXECUTED, "error") for call in open_calls)
            open_calls = list(message.tool_calls) if isinstance(message, AIMessage) else []
        view.append(message)
    view.extend(tool_result(call, NOT_EXECUTED, "error") for call in open_calls)
    return view


THINKING_KEYS = ("reasoning_content", "thinking_blocks", "reasoning_items")  # additional_kwargs holding them
THINKING_BLOCKS = ("thinking", "redacted_thinking", "reasoning")  # content block types holding them
# Replayed by langchain-litellm only to the endpoint that signed or issued them, after the same history; the
# rest (reasoning_content) goes to any endpoint. Kept: without them litellm turns Claude's thinking off.
SIGNED_KEYS = ("thinking_blocks", "reasoning_items")


def without_thinking(message: AIMessage, keep_signed: bool = False) -> AIMessage:
    """`message` without its thinking or reasoning (what a replay to another provider must not carry); with
    `keep_signed`, the signed blocks stay for the endpoint that signed them."""
    keys = tuple(k for k in THINKING_KEYS if not (keep_signed and k in SIGNED_KEYS))
    extra = {k: v for k, v in message.additional_kwargs.items() if k not in keys}
    fields = extra.get("provider_specific_fields")
    if isinstance(fields, dict):
        extra["provider_specific_fields"] = {k: v for k, v in fields.items() if k not in THINKING_KEYS}
    content = message.content
    if isinstance(content, list):
        content = [b for b in content if not (isinstance(b, dict) and b.get("type") in THINKING_BLOCKS)]
    if extra == message.additional_kwargs and content == message.content:
        return message
    return message.model_copy(update={"additional_kwargs": extra, "content": content})


def replayable(messages: list[AnyMessage], refused: Container[str | None] = ()) -> list[AnyMessage]:
    """`messages` as a call may replay them: assistant messages without their thinking, except the signed
    blocks, which go back to the endpoint that signed them unless it refused them (ids in `refused`)."""
    return [
        without_thinking(m, keep_signed=m.id not in refused) if isinstance(m, AIMessage) else m
        for m in messages
    ]


def with_unique_call_ids(reply: AIMessage, messages: list[AnyMessage]) -> AIMessage:
    """`reply` with every tool call id unique in the transcript: approvals and results are matched by id, so
    a reused id (a careless or hostile reply) could let one call's decision or result stand for another's."""
    seen = {call["id"] for m in messages if isinstance(m, AIMessage) for call in m.tool_calls}
    calls, renamed = [], False
    for call in reply.tool_calls:
        call_id, n = call["id"] or "call", 1
        while call_id in seen:
            n += 1
            call_id = f"{call['id'] or 'call'}_{n}"
        seen.add(call_id)
        renamed = renamed or call_id != call["id"]
        calls.append({**call, "id": call_id})
    if not renamed:
        return reply
    raw = reply.additional_kwargs.get("tool_calls")
    extra = dict(reply.additional_kwargs)
    if isinstance(raw, list) and len(raw) == len(calls):  # the provider's own form, sent back as it came
        extra["tool_calls"] = [_with_id(item, call["id"]) for item, call in zip(raw, calls, strict=True)]
    return reply.model_copy(update={"tool_calls": calls, "additional_kwargs": extra})


def _with_id(raw: Any, call_id: str) -> Any:
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump()
    return {**raw, "id": call_id} if isinstance(raw, dict) else raw
