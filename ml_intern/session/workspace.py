"""The undo store: user turns, the scans taken around their tool calls, and the blobs those scans copied.

A row of `ml_intern_undo_turns` is a user turn (thread, base checkpoint); rows of `ml_intern_undo_calls`
(session/journal.py) are what its local tool calls changed. File contents live in a BlobStore under
ML_INTERN_HOME/snapshots/. A blob is kept while a kept call row needs it as a before-state, or while it is a
workdir's latest scan (`ml_intern_scan_cache`: the next process reuses its hashes); turns that can no
longer be undone (undone, their thread deleted, or older than the thread's newest `undo.keep_turns`) lose
their rows, and `prune` deletes what nothing needs. Rows of `ml_intern_snapshots` are whole-turn manifests
written by versions before the journal: kept readable, so undo can list what those turns changed.
"""

from __future__ import annotations

import asyncio
import socket
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from ml_intern.configs.schema import UndoConfig
from ml_intern.session.blobs import BlobStore, Swept
from ml_intern.session.db import Database
from ml_intern.session.home_id import home_id
from ml_intern.session.journal import CallJournal
from ml_intern.session.manifests import MAX_FILE_BYTES, MAX_FILES, Manifest, Scanner, blobs_of

__all__ = ["MAX_FILES", "TurnSnapshots", "WorkspaceSnapshots"]

SWEEP_GRACE_S = 600.0  # blobs written this recently may belong to a scan still running elsewhere: kept


@dataclass
class TurnSnapshots:
    """The whole-turn manifests an older version took around one user turn."""

    workdir: Path
    start: Manifest | None
    end: Manifest | None


class WorkspaceSnapshots:
    """Records user turns, scans workdirs for the call journal, prunes what no kept turn needs."""

    def __init__(
        self, conn: Database, home: Path, database: Path | None, keep_turns: int | None = None
    ) -> None:
        self.conn = conn  # tables made by session/migrations.py
        self.home = home.resolve()  # this machine's ML_INTERN_HOME: the blobs are files here
        self.store = BlobStore(self.home / "snapshots" / "blobs")
        self.never_scanned = {str(self.home / "snapshots"), *sqlite_files(database)}
        self.max_files = MAX_FILES
        self.max_file_bytes = MAX_FILE_BYTES
        self.keep_turns = keep_turns or UndoConfig().keep_turns  # per thread: older turns cannot be undone
        self.sweep_grace_s = SWEEP_GRACE_S
        self.last: dict[str, Manifest] = {}  # the latest full scan per workdir, in this process
        self.home_id = ""  # this home's id (identity())

    async def identity(self) -> str:
        """This home's id (home_id.py), read or made off the event loop once."""
        if not self.home_id:
            self.home_id = await asyncio.to_thread(home_id, self.home)
        return self.home_id

    async def begin_turn(self, thread_id: str, base_checkpoint: str, workdir: Path) -> CallJournal:
        """Record a user turn starting from `base_checkpoint` in this home (whose workdir and blobs its undo
        needs); the journal returned records its calls."""
        workdir, host, home = workdir.resolve(), socket.gethostname(), await self.identity()
        await self.conn.execute(
            "INSERT INTO ml_intern_undo_turns (thread_id, base_checkpoint, workdir, started_at, host,"
            " home_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, base_checkpoint) DO UPDATE SET"
            " workdir = excluded.workdir, started_at = excluded.started_at, host = excluded.host,"
            " home_id = excluded.home_id",
            (thread_id, base_checkpoint, str(workdir), time.time(), host, home),
        )
        await self.conn.commit()
        return CallJournal(self, thread_id, base_checkpoint, workdir, host, home)

    async def latest_turn(self, thread_id: str, workdir: Path | None = None) -> CallJournal | None:
        """The journal a resumed turn's calls record in: the thread's latest user turn, as run in this home
        and `workdir` (the turn may have begun on another machine: each call row says where it ran).
        None for `workdir`: the turn's own."""
        async with self.conn.execute(
            "SELECT base_checkpoint, workdir FROM ml_intern_undo_turns WHERE thread_id = ?"
            " ORDER BY started_at DESC LIMIT 1",
            (thread_id,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        where, home = (workdir or Path(row[1])).resolve(), await self.identity()
        return CallJournal(self, thread_id, row[0], where, socket.gethostname(), home)

    async def turn_owner(self, thread_id: str, base_checkpoint: str) -> tuple[str, str] | None:
        """The machine and home whose workdir (and snapshot blobs) the turn began in ("": not recorded then;
        None: the journal did not record the turn)."""
        query = "SELECT host, home_id FROM ml_intern_undo_turns WHERE thread_id = ? AND base_checkpoint = ?"
        async with self.conn.execute(query, (thread_id, base_checkpoint)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else (row[0], row[1])

    async def end_turn(self, thread_id: str) -> None:
        """Save the latest scans (for the next process's hash reuse); forget turns past the limit."""
        for workdir, manifest in list(self.last.items()):
            blob = await asyncio.to_thread(self.store.put, manifest.to_bytes())
            await self.conn.execute(
                "INSERT INTO ml_intern_scan_cache (workdir, manifest, taken_at) VALUES (?, ?, ?) ON CONFLICT"
                " (workdir) DO UPDATE SET manifest = excluded.manifest, taken_at = excluded.taken_at",
                (workdir, blob, manifest.taken_ns / 1e9),
            )
        await self.conn.commit()
        await self.keep_newest(thread_id)

    async def turn(self, thread_id: str, base_checkpoint: str) -> TurnSnapshots | None:
        """The whole-turn manifests an older version took (None: it took none)."""
        async with self.conn.execute(
            "SELECT workdir, start_manifest, end_manifest FROM ml_intern_snapshots"
            " WHERE thread_id = ? AND base_checkpoint = ?",
            (thread_id, base_checkpoint),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        start, end = (Manifest.from_bytes(self.store.get(b)) if b else None for b in row[1:])
        return TurnSnapshots(Path(row[0]), start, end)

    async def forget(self, thread_id: str, base_checkpoints: list[str]) -> None:
        """Drop the rows of turns that can no longer be undone (`prune` then frees their blobs)."""
        pairs = [(thread_id, base) for base in base_checkpoints]
        for table in ("ml_intern_snapshots", "ml_intern_undo_turns", "ml_intern_undo_calls"):
            await self.conn.executemany(
                f"DELETE FROM {table} WHERE thread_id = ? AND base_checkpoint = ?", pairs
            )
        await self.conn.commit()

    async def forget_thread(self, thread_id: str) -> None:
        """Drop every row of a deleted thread, and the latest scans of workdirs no kept turn is in."""
        for table in ("ml_intern_snapshots", "ml_intern_undo_turns", "ml_intern_undo_calls"):
            await self.conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
        await self.conn.execute(
            "DELETE FROM ml_intern_scan_cache WHERE workdir NOT IN (SELECT workdir FROM ml_intern_undo_turns)"
        )
        async with self.conn.execute("SELECT DISTINCT workdir FROM ml_intern_undo_turns") as cursor:
            used = {row[0] for row in await cursor.fetchall()}
        self.last = {workdir: manifest for workdir, manifest in self.last.items() if workdir in used}
        await self.conn.commit()

    async def keep_newest(self, thread_id: str) -> None:
        """Forget the thread's turns beyond its newest `keep_turns`, and prune the blobs only they used."""
        async with self.conn.execute(
            "SELECT base_checkpoint FROM (SELECT base_checkpoint, started_at FROM ml_intern_undo_turns"
            " WHERE thread_id = ? UNION ALL SELECT base_checkpoint, started_at FROM ml_intern_snapshots"
            " WHERE thread_id = ?) AS turns ORDER BY started_at DESC",
            (thread_id, thread_id),
        ) as cursor:  # a few more rows than kept: no dialect's spelling of "no LIMIT" needed
            older = [row[0] for row in await cursor.fetchall()][self.keep_turns :]
        if len(older) >= max(1, self.keep_turns // 5):  # in batches: a prune reads every kept manifest
            await self.forget(thread_id, older)
            await self.prune()

    async def prune(self) -> Swept:
        """Delete the blobs that no kept call row, latest scan or older turn manifest needs (off the loop)."""
        manifests, live = set(), set()
        async with self.conn.execute(
            "SELECT start_manifest FROM ml_intern_snapshots WHERE start_manifest IS NOT NULL"
            " UNION SELECT end_manifest FROM ml_intern_snapshots WHERE end_manifest IS NOT NULL"
            " UNION SELECT manifest FROM ml_intern_scan_cache"
        ) as cursor:
            manifests = {row[0] for row in await cursor.fetchall()}
        async with self.conn.execute("SELECT blobs FROM ml_intern_undo_calls WHERE blobs != ''") as cursor:
            live = {sha for row in await cursor.fetchall() for sha in row[0].split()}
        for manifest in self.last.values():  # this process's scans: the next call's before-states
            live |= blobs_of(manifest.to_bytes())
        return await asyncio.to_thread(self._sweep, manifests, live)

    def _sweep(self, manifests: set[str], live: set[str]) -> Swept:
        live = live | manifests
        for sha in manifests:
            try:
                live |= blobs_of(self.store.get(sha))
            except FileNotFoundError:  # a lost manifest: nothing to keep for it
                continue
            except (OSError, ValueError, KeyError, zlib.error):  # unreadable: what it needs is unknown
                return Swept()
        return self.store.sweep(live, self.sweep_grace_s)

    async def scan(self, workdir: Path, paths: list[str] | None, copy: bool) -> Manifest:
        """Scan `workdir` (or only `paths` in it) off the event loop, reusing the latest scan's hashes."""
        excluded = set(self.never_scanned)
        if self.home != workdir and self.home.is_relative_to(workdir):
            excluded.add(str(self.home))
        previous = self.last.get(str(workdir)) or await self._cached(workdir)
        scanner = Scanner(self.store, previous, excluded, self.max_files, self.max_file_bytes, copy=copy)
        if paths is not None:
            return await asyncio.to_thread(scanner.scan_paths, workdir, paths)
        manifest = await asyncio.to_thread(scanner.scan, workdir)
        self.last[str(workdir)] = manifest
        return manifest

    async def _cached(self, workdir: Path) -> Manifest | None:
        """The latest scan of `workdir` another process saved, so its hashes can be reused."""
        query = "SELECT manifest, taken_at FROM ml_intern_scan_cache WHERE workdir = ?"
        async with self.conn.execute(query, (str(workdir),)) as cursor:
            row = await cursor.fetchone()
        try:
            return Manifest.from_bytes(self.store.get(row[0]), int(row[1] * 1e9)) if row else None
        except (OSError, ValueError, KeyError, zlib.error):
            return None


def sqlite_files(database: Path | None) -> list[str]:
    """The SQLite file and its WAL companions, never scanned (None: the database is not a file here)."""
    if database is None:
        return []
    database = database.resolve()
    return [f"{database}{suffix}" for suffix in ("", "-wal", "-shm")]
