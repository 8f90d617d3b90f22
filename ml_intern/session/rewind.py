"""Where an undo rewinds to: the checkpoints where a thread's last user turns began, and what they wrote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages

from ml_intern.graph.messages import is_user_turn


@dataclass
class TurnStart:
    """A checkpoint where a user turn began."""

    base: str  # id of the checkpoint the turn started from ('' for the thread's first turn)
    parent_config: dict[str, Any] | None  # that checkpoint's config: the state before the turn
    prompt: str  # what the user typed


@dataclass
class Rewind:
    """The undone stretch of a thread's parent chain."""

    starts: list[TurnStart]  # newest first
    written: list[BaseMessage]  # messages the undone turns wrote, oldest first (compacted ones included)

    @property
    def target(self) -> dict[str, Any] | None:
        return self.starts[-1].parent_config if self.starts else None


def user_prompt(tup: Any) -> str | None:
    """The user's message when checkpoint `tup` started a user turn, else None."""
    if tup.metadata.get("source") != "input":
        return None
    start = tup.checkpoint["channel_values"].get("__start__")
    messages = start.get("messages") if isinstance(start, dict) else None
    if not messages:
        return None
    typed = convert_to_messages(messages if isinstance(messages, list) else [messages])
    return next((m.text for m in typed if is_user_turn(m)), None)


def messages_written(tup: Any) -> list[BaseMessage]:
    """Messages appended by the tasks that ran from checkpoint `tup` (compaction's overwrites left out)."""
    values = [value for _, channel, value in tup.pending_writes or [] if channel == "messages"]
    found = [m for value in values for m in (value if isinstance(value, list) else [value])]
    return [m for m in found if isinstance(m, BaseMessage)]


async def find_rewind(saver: Any, thread_id: str, n: int) -> Rewind:
    """Walk the head's parent chain (never other branches) back to the start of the n-th last user turn."""
    tup = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    starts: list[TurnStart] = []
    batches: list[list[BaseMessage]] = []
    while tup is not None and len(starts) < n:
        batches.append(messages_written(tup))
        prompt = user_prompt(tup)
        if prompt is not None:
            parent = tup.parent_config
            base = parent["configurable"]["checkpoint_id"] if parent else ""
            starts.append(TurnStart(base, parent, prompt))
        tup = await saver.aget_tuple(tup.parent_config) if tup.parent_config else None
    return Rewind(starts, [message for batch in reversed(batches) for message in batch])
