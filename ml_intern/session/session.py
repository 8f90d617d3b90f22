"""A session: the checkpointer, the thread table and the compiled graph, open for one process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage

from ml_intern.graph.builder import build_graph
from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import is_user_turn
from ml_intern.session.checkpointer import open_checkpointer, when_unlocked
from ml_intern.session.runner import EventSink, TurnOutcome, run_turn
from ml_intern.session.threads import ThreadStore
from ml_intern.session.workspace import MAX_FILES, WorkspaceSnapshots

if TYPE_CHECKING:
    from ml_intern.session.undo import UndoReport


def starts_user_turn(graph_input: Any) -> bool:
    """Whether the graph input carries a message the user typed (not a resume or a continuation)."""
    messages = graph_input.get("messages") if isinstance(graph_input, dict) else None
    return any(isinstance(m, BaseMessage) and is_user_turn(m) for m in messages or [])


@dataclass
class Session:
    """Everything needed to run and list threads."""

    app: Any  # the compiled graph with the SQLite checkpointer
    threads: ThreadStore  # thread metadata rows
    snapshots: WorkspaceSnapshots | None = None  # workdir snapshots around user turns (None: no file undo)

    async def turn(
        self, thread_id: str, graph_input: Any, ctx: RunContext, on_event: EventSink, title: str = ""
    ) -> TurnOutcome:
        """Run one turn and keep the thread row current (a new user message counts as a turn)."""
        if title:
            await self.threads.start_turn(thread_id, title, ctx.model, ctx.workdir)
        if starts_user_turn(graph_input):
            await self._snapshot(on_event, self._begin_snapshot(thread_id, ctx))
        try:
            return await run_turn(self.app, thread_id, graph_input, ctx, on_event)
        finally:
            state = await self.app.aget_state({"configurable": {"thread_id": thread_id}})
            values = state.values or {}
            await self.threads.end_turn(thread_id, values.get("stop_reason"), values.get("usage") or {})
            if self.snapshots is not None:
                await self._snapshot(on_event, self.snapshots.end_turn(thread_id))

    async def undo(self, thread_id: str, n: int = 1) -> UndoReport:
        """Rewind the last `n` user turns and the files they changed (see ml_intern.session.undo)."""
        from ml_intern.session.undo import undo_turns

        return await undo_turns(self, thread_id, n)

    async def messages(self, thread_id: str) -> list[Any]:
        state = await self.app.aget_state({"configurable": {"thread_id": thread_id}})
        return (state.values or {}).get("messages", [])

    async def user_turns(self, thread_id: str) -> int:
        return sum(1 for m in await self.messages(thread_id) if is_user_turn(m))

    async def _begin_snapshot(self, thread_id: str, ctx: RunContext) -> Any:
        """Snapshot the workdir as the turn starts, keyed by the checkpoint the turn starts from."""
        if self.snapshots is None:
            return None
        head = await self.app.checkpointer.aget_tuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        )
        base = head.config["configurable"]["checkpoint_id"] if head else ""
        workdir = Path(ctx.workdir or os.getcwd())
        return await self.snapshots.begin_turn(thread_id, base, workdir)

    async def _snapshot(self, on_event: EventSink, snapshot: Any) -> None:
        """Await a snapshot; a failure only costs undo its file restore, never the turn."""
        try:
            manifest = await snapshot
        except Exception as exc:  # a full disk or an unreadable workdir must not stop the agent
            on_event({"type": "tool_log", "tool": "undo", "text": f"workspace snapshot failed: {exc}"})
            return
        if manifest is not None and manifest.truncated:
            text = f"more than {MAX_FILES} files in the working directory: undo tracks only the first"
            on_event({"type": "tool_log", "tool": "undo", "text": text})


@asynccontextmanager
async def open_session(database: Path) -> AsyncIterator[Session]:
    """Open the database in `database` and compile the graph against it."""
    async with open_checkpointer(database) as saver:
        threads = ThreadStore(saver.conn)
        await when_unlocked(threads.setup)
        snapshots = WorkspaceSnapshots(saver.conn, database.parent, database)
        await when_unlocked(snapshots.setup)
        yield Session(app=build_graph(checkpointer=saver), threads=threads, snapshots=snapshots)
