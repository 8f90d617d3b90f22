"""Thread metadata kept beside the checkpoints, so listing threads never decodes a checkpoint."""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_intern.errors import UserError
from ml_intern.secrets import redact
from ml_intern.session.db import Database

COLUMNS = (
    "thread_id, title, model, workdir, created_at, updated_at, turns, stop_reason, input_tokens,"
    " output_tokens, cost_usd, cached_tokens, usage_json, tool_runtime, host"
)


@dataclass
class ThreadInfo:
    """One row of the thread list."""

    thread_id: str
    title: str
    model: str
    workdir: str
    created_at: float
    updated_at: float
    turns: int
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: some call's price is unknown
    cached_tokens: int = 0
    usage: dict[str, Any] = field(default_factory=dict)  # usage totals, with research/compaction shares
    tool_runtime: str = "local"  # where its tools run: fixed when the thread starts (config `tool_runtime`)
    host: str = ""  # the machine that last ran a turn of it ("": before hosts were recorded)


def thread_info(row: Any) -> ThreadInfo:
    """A ThreadInfo from a row selected with COLUMNS."""
    *fields, usage_json, tool_runtime, host = row
    return ThreadInfo(*fields, usage=json.loads(usage_json or "{}"), tool_runtime=tool_runtime, host=host)


class UnknownThreadError(UserError):
    """No thread (or more than one) matches the given id."""


def thread_config(thread_id: str) -> dict[str, Any]:
    """The LangGraph config that names a thread (its latest checkpoint)."""
    return {"configurable": {"thread_id": thread_id}}


def new_thread_id() -> str:
    return uuid.uuid4().hex[:12]


class ThreadStore:
    """Reads and writes thread rows (table made by session/migrations.py)."""

    def __init__(self, conn: Database) -> None:
        self.conn = conn

    async def start_turn(
        self, thread_id: str, title: str, model: str, workdir: str, tool_runtime: str = "local"
    ) -> None:
        """Record a new user turn on this machine (creating the thread row, with its tool runtime, on its
        first turn)."""
        now = time.time()
        await self.conn.execute(
            "INSERT INTO ml_intern_threads"
            " (thread_id, title, model, workdir, created_at, updated_at, turns, tool_runtime, host)"
            " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT(thread_id) DO UPDATE SET"
            " turns = ml_intern_threads.turns + 1, updated_at = excluded.updated_at, model = excluded.model,"
            " host = excluded.host, title = CASE WHEN ml_intern_threads.title = '' THEN excluded.title"
            " ELSE ml_intern_threads.title END",
            (thread_id, redact(title)[:80], model, workdir, now, now, tool_runtime, socket.gethostname()),
        )
        await self.conn.commit()

    async def end_turn(self, thread_id: str, stop_reason: str | None, usage: dict[str, Any]) -> None:
        """Record how the turn ended and the thread's usage totals."""
        await self.conn.execute(
            "UPDATE ml_intern_threads SET updated_at = ?, stop_reason = ?, input_tokens = ?,"
            " output_tokens = ?, cost_usd = ?, cached_tokens = ?, usage_json = ? WHERE thread_id = ?",
            (
                time.time(),
                stop_reason,
                usage.get("input_tokens", 0),
                usage.get("output_tokens", 0),
                usage.get("cost_usd", 0.0 if not usage else None),
                usage.get("cached_tokens", 0),
                json.dumps(usage),
                thread_id,
            ),
        )
        await self.conn.commit()

    async def set_turns(self, thread_id: str, turns: int) -> None:
        await self.conn.execute(
            "UPDATE ml_intern_threads SET turns = ?, updated_at = ? WHERE thread_id = ?",
            (turns, time.time(), thread_id),
        )
        await self.conn.commit()

    async def list(self, limit: int = 50) -> list[ThreadInfo]:
        """Most recently updated first."""
        async with self.conn.execute(
            f"SELECT {COLUMNS} FROM ml_intern_threads ORDER BY updated_at DESC LIMIT ?", (limit,)
        ) as cursor:
            return [thread_info(row) for row in await cursor.fetchall()]

    async def latest_in(self, workdir: Path) -> ThreadInfo | None:
        """The most recently updated thread started in `workdir` (as given or resolved), or None."""
        async with self.conn.execute(
            f"SELECT {COLUMNS} FROM ml_intern_threads WHERE workdir IN (?, ?)"
            " ORDER BY updated_at DESC LIMIT 1",
            (str(workdir), str(workdir.resolve())),
        ) as cursor:
            row = await cursor.fetchone()
        return thread_info(row) if row else None

    async def find(self, prefix: str | None) -> ThreadInfo:
        """The thread whose id starts with `prefix` (the most recent one when `prefix` is None)."""
        if prefix is None:
            rows = await self.list(limit=1)
            if not rows:
                raise UnknownThreadError('no threads yet: start one with ml-intern "PROMPT"')
            return rows[0]
        async with self.conn.execute(  # LOWER: LIKE ignores case on SQLite only; ids are lowercase hex
            f"SELECT {COLUMNS} FROM ml_intern_threads WHERE LOWER(thread_id) LIKE ?"
            " ORDER BY updated_at DESC LIMIT 3",
            (prefix.replace("%", "").replace("_", "").lower() + "%",),
        ) as cursor:
            rows = [thread_info(row) for row in await cursor.fetchall()]
        if len(rows) != 1:
            what = "no thread" if not rows else "several threads"
            raise UnknownThreadError(f"{what} matching '{prefix}': run ml-intern threads to list them")
        return rows[0]
