"""The call journal: what each batch of local tool calls changed in the working directory, for undo.

Around the calls of one batch that may write local files (bash, write, edit, and undeclared tools: MCP and
custom), the workdir is scanned before (contents copied) and after (hashes only); the difference is the calls'
change set, stored in a row of `ml_intern_undo_calls` with the time window it was observed in. A change made
between calls is in no row: undo never touches it. Concurrent calls of one batch share one row, so the
window is as long as the slowest; calls of other kinds in the batch run outside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ml_intern.graph import events
from ml_intern.graph.events import emit
from ml_intern.session.changes import Change, copied_blobs, diff
from ml_intern.session.manifests import Manifest

T = TypeVar("T")
LOST = "its copy was removed from the snapshot store"
TARGETED = ("write", "edit")  # tools that change only their `path` (and the directories leading to it)


@dataclass
class CallRow:
    """One recorded batch of calls."""

    thread_id: str
    workdir: str
    seq: int
    started_at: float
    ended_at: float | None
    changes: list[Change] | None  # None: the calls ran but what they changed was not recorded
    host: str = ""  # the machine the calls ran on ("": recorded before calls said; the turn's row does)
    home_id: str = ""  # the ML_INTERN_HOME whose blob store holds the before-copies (home_id.py)


class CallJournal:
    """Records the calls of one user turn (thread, base checkpoint) in one workdir."""

    def __init__(
        self,
        snapshots: Any,
        thread_id: str,
        base_checkpoint: str,
        workdir: Path,
        host: str = "",
        home_id: str = "",
    ) -> None:
        self.snapshots, self.thread_id, self.base = snapshots, thread_id, base_checkpoint
        self.workdir = workdir
        self.host, self.home_id = host, home_id  # the machine and home whose workdir and blobs these are
        self.warned = False  # the file cap notice, once a turn

    def targets(self, calls: list[dict[str, Any]]) -> list[str] | None:
        """The workdir paths `calls` can change, or None when only a scan of everything can tell."""
        paths = []
        for call in calls:
            path = (call.get("args") or {}).get("path")
            if call["name"] not in TARGETED or not isinstance(path, str) or path.startswith("~"):
                return None
            full = os.path.normpath(os.path.join(self.workdir, path))
            if os.path.realpath(full) != full:  # through a symlink: what it changes is elsewhere
                return None
            rel = os.path.relpath(full, self.workdir)
            if not rel.startswith(".."):  # outside: nothing of the workdir to record
                paths.append(Path(rel).as_posix())
        return paths

    async def record(self, calls: list[dict[str, Any]], run: Callable[[], Awaitable[T]]) -> T:
        """Run `run` (the calls) between two scans and store what changed; a failed scan never stops it."""
        paths, started = self.targets(calls), time.time()
        try:
            before = await self.snapshots.scan(self.workdir, paths, copy=True)
            seq = await self._open(calls, started)
        except Exception as exc:  # a full disk or an unreadable workdir must not stop the agent
            emit(events.notice("undo", f"workspace snapshot failed: {exc}; undo cannot restore these files"))
            return await run()
        try:
            return await run()
        finally:
            await asyncio.shield(self._close(seq, before, paths))

    async def _open(self, calls: list[dict[str, Any]], started: float) -> int:
        conn = self.snapshots.conn
        query = (
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM ml_intern_undo_calls"
            " WHERE thread_id = ? AND base_checkpoint = ?"
        )
        async with conn.execute(query, (self.thread_id, self.base)) as cursor:
            seq = (await cursor.fetchone())[0]
        await conn.execute(
            "INSERT INTO ml_intern_undo_calls (thread_id, base_checkpoint, seq, call_ids, workdir,"
            " started_at, host, home_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (thread_id, base_checkpoint, seq) DO UPDATE SET"
            " call_ids = excluded.call_ids, workdir = excluded.workdir, started_at = excluded.started_at,"
            " ended_at = NULL, changes = NULL, blobs = '', host = excluded.host, home_id = excluded.home_id",
            (
                self.thread_id,
                self.base,
                seq,
                " ".join(c["id"] for c in calls),
                str(self.workdir),
                started,
                self.host,
                self.home_id,
            ),
        )
        await conn.commit()
        return seq

    async def _close(self, seq: int, before: Manifest, paths: list[str] | None) -> None:
        changes: list[Change] | None = None
        try:
            after = await self.snapshots.scan(self.workdir, paths, copy=False)
            changes = self._checked(diff(before, after))
            if before.truncated and not self.warned:
                self.warned = True
                cap = self.snapshots.max_files
                text = f"more than {cap} files in the working directory: undo tracks only the first"
                emit(events.notice("undo", text))
        except Exception as exc:
            emit(events.notice("undo", f"workspace snapshot failed: {exc}; undo cannot restore these files"))
        await self.snapshots.conn.execute(
            "UPDATE ml_intern_undo_calls SET ended_at = ?, changes = ?, blobs = ?"
            " WHERE thread_id = ? AND base_checkpoint = ? AND seq = ?",
            (
                time.time(),
                None if changes is None else json.dumps(changes, separators=(",", ":")),
                " ".join(sorted(copied_blobs(changes or []))),
                self.thread_id,
                self.base,
                seq,
            ),
        )
        await self.snapshots.conn.commit()

    def _checked(self, changes: list[Change]) -> list[Change]:
        """`changes` with before-states whose copy a sweep removed (reused hashes) marked as not copied."""
        store = self.snapshots.store
        for _, before, _ in changes:
            if before and before[0] == "file" and before[3] and not before[5] and not store.keep(before[3]):
                before[5] = LOST
        return changes


async def turn_calls(conn: Any, thread_id: str, base_checkpoint: str) -> list[CallRow]:
    """The recorded batches of one user turn, newest first."""
    async with conn.execute(
        "SELECT workdir, seq, started_at, ended_at, changes, host, home_id FROM ml_intern_undo_calls"
        " WHERE thread_id = ? AND base_checkpoint = ? ORDER BY seq DESC",
        (thread_id, base_checkpoint),
    ) as cursor:
        rows = await cursor.fetchall()
    return [CallRow(thread_id, *r[:4], _changes(r[4]), r[5], r[6]) for r in rows]


async def overlapping(conn: Any, thread_id: str, workdir: str, started: float, ended: float) -> list[CallRow]:
    """Other threads' batches in `workdir` whose window overlaps [started, ended]."""
    async with conn.execute(
        "SELECT thread_id, seq, started_at, ended_at, changes FROM ml_intern_undo_calls"
        " WHERE workdir = ? AND thread_id != ? AND started_at < ? AND ended_at > ?",
        (workdir, thread_id, ended, started),
    ) as cursor:
        rows = await cursor.fetchall()
    return [CallRow(r[0], workdir, *r[1:4], _changes(r[4])) for r in rows]


def _changes(text: str | None) -> list[Change] | None:
    return [tuple(change) for change in json.loads(text)] if text is not None else None  # type: ignore[misc]
