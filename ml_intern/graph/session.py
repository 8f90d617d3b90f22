"""A session: the checkpointer, the thread table and the compiled graph, open for one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_intern.graph.builder import build_graph
from ml_intern.graph.checkpointer import open_checkpointer
from ml_intern.graph.context import RunContext
from ml_intern.graph.messages import is_user_turn
from ml_intern.graph.runner import EventSink, TurnOutcome, run_turn
from ml_intern.graph.threads import ThreadStore


@dataclass
class Session:
    """Everything needed to run and list threads."""

    app: Any  # the compiled graph with the SQLite checkpointer
    threads: ThreadStore  # thread metadata rows

    async def turn(
        self, thread_id: str, graph_input: Any, ctx: RunContext, on_event: EventSink, title: str = ""
    ) -> TurnOutcome:
        """Run one turn and keep the thread row current (a new user message counts as a turn)."""
        if title:
            await self.threads.start_turn(thread_id, title, ctx.model, ctx.workdir)
        try:
            return await run_turn(self.app, thread_id, graph_input, ctx, on_event)
        finally:
            state = await self.app.aget_state({"configurable": {"thread_id": thread_id}})
            values = state.values or {}
            await self.threads.end_turn(thread_id, values.get("stop_reason"), values.get("usage") or {})

    async def messages(self, thread_id: str) -> list[Any]:
        state = await self.app.aget_state({"configurable": {"thread_id": thread_id}})
        return (state.values or {}).get("messages", [])

    async def user_turns(self, thread_id: str) -> int:
        return sum(1 for m in await self.messages(thread_id) if is_user_turn(m))


@asynccontextmanager
async def open_session(database: Path) -> AsyncIterator[Session]:
    """Open the database in `database` and compile the graph against it."""
    async with open_checkpointer(database) as saver:
        threads = ThreadStore(saver.conn)
        await threads.setup()
        yield Session(app=build_graph(checkpointer=saver), threads=threads)
