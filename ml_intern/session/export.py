"""Shareable traces: a thread as Claude Code session JSONL (what the Hub's Agent Trace Viewer reads) or JSON.

JSONL: one line per message, `{"type": "user"|"assistant", "uuid", "parentUuid", "sessionId", "timestamp",
"message": {"role", "content"}}`, each line's parentUuid the previous line's uuid. Assistant content holds
`text` and `tool_use` blocks; each tool result is a user line with one `tool_result` block. As in Claude Code,
guard messages are user lines marked `isMeta` and compaction summaries are marked `isCompactSummary`: neither
is a user turn. Every string is redacted again on the way out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from ml_intern.errors import UserError
from ml_intern.graph.accounting import turn_usage
from ml_intern.graph.messages import MARK, model_view
from ml_intern.secrets import redact_value, register_secrets
from ml_intern.session.threads import thread_config

FORMATS = ("claude-jsonl", "jsonl", "json")  # jsonl: short for claude-jsonl
LINE_NAMESPACE = uuid.UUID("5b0c6f7e-4f1e-4c39-9a55-6d6c2d696e74")  # line uuids stay stable across exports


def text_of(content: Any) -> str:
    """The text of message content given as a string or as a list of blocks."""
    if isinstance(content, str):
        return content
    parts = [
        b if isinstance(b, str) else b.get("text", "") for b in content or [] if isinstance(b, str | dict)
    ]
    return "\n".join(part for part in parts if part)


def timestamp(seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds, as Claude Code writes it."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assistant_entry(message: AIMessage, model: str) -> dict[str, Any] | None:
    """The message and envelope keys of an assistant line; None for a reply with nothing in it."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.text}] if message.text else []
    blocks += [
        {"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["args"]} for c in message.tool_calls
    ]
    if not blocks:
        return None
    meta = message.usage_metadata or {}
    usage = {
        "input_tokens": meta.get("input_tokens", 0),
        "output_tokens": meta.get("output_tokens", 0),
        "cache_read_input_tokens": (meta.get("input_token_details") or {}).get("cache_read") or 0,
    }
    payload = {
        "role": "assistant",
        "model": message.response_metadata.get("model_name") or model,
        "content": blocks,
        "stop_reason": "tool_use" if message.tool_calls else "end_turn",
        "usage": usage,
    }
    return {"message": payload, "costUSD": message.response_metadata.get("cost_usd")}


def user_entry(message: AnyMessage) -> dict[str, Any]:
    """The message and envelope keys of a user line: a tool result, a typed message, a guard or a summary."""
    if isinstance(message, ToolMessage):
        block = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": text_of(message.content),
            "is_error": message.status == "error",
        }
        return {"message": {"role": "user", "content": [block]}}
    entry: dict[str, Any] = {"message": {"role": "user", "content": text_of(message.content)}}
    mark = message.additional_kwargs.get(MARK) or {}
    if mark.get("summary"):
        entry |= {"isCompactSummary": True, "isVisibleInTranscriptOnly": True, "mlIntern": mark}
    elif mark:
        entry |= {"isMeta": True, "mlIntern": mark}
    return entry


def trace_lines(
    messages: list[AnyMessage], session_id: str, model: str = "", cwd: str = "", started: float = 0.0
) -> list[dict[str, Any]]:
    """The transcript as Claude Code session lines; calls left without a result get a 'not executed' one."""
    lines: list[dict[str, Any]] = []
    parent, clock = None, started
    for index, message in enumerate(model_view(messages)):
        if isinstance(message, AIMessage):
            clock = message.response_metadata.get("created_at") or clock
            entry = assistant_entry(message, model)
        else:
            entry = user_entry(message) if isinstance(message, HumanMessage | ToolMessage) else None
        if entry is None:
            continue
        line_id = str(uuid.uuid5(LINE_NAMESPACE, f"{session_id}:{index}"))
        kind = "assistant" if isinstance(message, AIMessage) else "user"
        envelope = {"type": kind, "uuid": line_id, "parentUuid": parent, "sessionId": session_id}
        envelope |= {"timestamp": timestamp(clock), "cwd": cwd, "isSidechain": False}
        lines.append(redact_value({**envelope, **entry}))
        parent = line_id
    return lines


def message_record(message: AnyMessage) -> dict[str, Any]:
    """One message of the JSON export."""
    record: dict[str, Any] = {"role": message.type, "content": text_of(message.content)}
    if isinstance(message, AIMessage):
        record["tool_calls"] = [
            {"id": c["id"], "name": c["name"], "args": c["args"]} for c in message.tool_calls
        ]
        record["usage"] = dict(message.usage_metadata or {})
        record["cost_usd"] = message.response_metadata.get("cost_usd")
    elif isinstance(message, ToolMessage):
        record |= {"tool_call_id": message.tool_call_id, "name": message.name, "status": message.status}
    elif message.additional_kwargs.get(MARK):
        record["marked"] = message.additional_kwargs[MARK]  # a guard or a summary, not a user turn
    return record


def transcript_document(info: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The thread's row, usage (turn and thread) and messages as one JSON-ready document."""
    return redact_value(
        {
            "thread": asdict(info),
            "usage": {"turn": turn_usage(values), "thread": dict(values.get("usage") or {})},
            "messages": [message_record(m) for m in values.get("messages", [])],
        }
    )


async def export_thread(
    session: Any, thread_id: str | None, fmt: str = "jsonl", environ: Mapping[str, str] | None = None
) -> str:
    """A thread (id, unique prefix, or None for the latest) as Claude Code JSONL or as one JSON document;
    secret values of `environ` are redacted too."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format '{fmt}': use {' or '.join(FORMATS)}")
    register_secrets(environ or {})
    info = await session.threads.find(thread_id)
    state = await session.app.aget_state(thread_config(info.thread_id))
    values = state.values or {}
    if fmt == "json":
        return json.dumps(transcript_document(info, values), indent=2, ensure_ascii=False, default=str)
    messages = values.get("messages", [])
    lines = trace_lines(messages, info.thread_id, info.model, info.workdir, info.created_at)
    return "".join(json.dumps(line, ensure_ascii=False, default=str) + "\n" for line in lines)
