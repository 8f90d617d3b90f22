"""Workspace snapshots around a user turn, so that undo can put back the files the turn changed."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import EventSink
from ml_intern.graph.messages import is_user_turn
from ml_intern.session.workspace import MAX_FILES, WorkspaceSnapshots


def starts_user_turn(graph_input: Any) -> bool:
    """Whether the graph input carries a message the user typed (not a resume or a continuation)."""
    messages = graph_input.get("messages") if isinstance(graph_input, dict) else None
    return any(isinstance(m, BaseMessage) and is_user_turn(m) for m in messages or [])


async def snapshot_turn_start(
    app: Any,
    snapshots: WorkspaceSnapshots | None,
    thread_id: str,
    graph_input: Any,
    ctx: RunContext,
    on_event: EventSink,
) -> None:
    """Snapshot the workdir as a user turn starts, keyed by the checkpoint the turn starts from."""
    if snapshots is None or not starts_user_turn(graph_input):
        return
    head = await app.checkpointer.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    base = head.config["configurable"]["checkpoint_id"] if head else ""
    workdir = Path(ctx.workdir or os.getcwd())
    await _snapshot(on_event, snapshots.begin_turn(thread_id, base, workdir))


async def snapshot_turn_end(
    snapshots: WorkspaceSnapshots | None, thread_id: str, on_event: EventSink
) -> None:
    """Snapshot the workdir as the turn ends (a no-op when no user turn began a snapshot)."""
    if snapshots is not None:
        await _snapshot(on_event, snapshots.end_turn(thread_id))


async def _snapshot(on_event: EventSink, snapshot: Awaitable[Any]) -> None:
    """Await a snapshot; a failure only costs undo its file restore, never the turn."""
    try:
        manifest = await snapshot
    except Exception as exc:  # a full disk or an unreadable workdir must not stop the agent
        on_event(events.notice("undo", f"workspace snapshot failed: {exc}"))
        return
    if manifest is not None and manifest.truncated:
        text = f"more than {MAX_FILES} files in the working directory: undo tracks only the first"
        on_event(events.notice("undo", text))
