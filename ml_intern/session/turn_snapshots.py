"""The undo record of a user turn: its row, and the journal its tool calls record their changes in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import EventSink
from ml_intern.graph.messages import is_user_turn
from ml_intern.session.journal import CallJournal
from ml_intern.session.workspace import WorkspaceSnapshots


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
) -> CallJournal | None:
    """Record a user turn starting, keyed by the checkpoint it starts from; the journal its calls record in
    (a resumed turn's calls belong to the thread's latest user turn, recorded as run here, in this home's
    workdir, wherever the turn began). None: nothing is recorded."""
    if snapshots is None:
        return None
    workdir = Path(ctx.workdir or os.getcwd())
    try:
        if not starts_user_turn(graph_input):
            return await snapshots.latest_turn(thread_id, workdir)
        head = await app.checkpointer.aget_tuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        )
        base = head.config["configurable"]["checkpoint_id"] if head else ""
        return await snapshots.begin_turn(thread_id, base, workdir)
    except Exception as exc:  # a full disk must not stop the agent: undo only loses this turn's files
        on_event(events.notice("undo", f"workspace snapshot failed: {exc}"))
        return None


async def snapshot_turn_end(
    snapshots: WorkspaceSnapshots | None, thread_id: str, on_event: EventSink
) -> None:
    """Save the latest scans and forget turns past the limit (never fails the turn)."""
    if snapshots is None:
        return
    try:
        await snapshots.end_turn(thread_id)
    except Exception as exc:
        on_event(events.notice("undo", f"workspace snapshot failed: {exc}"))
