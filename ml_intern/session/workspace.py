"""Snapshots of the working directory at the start and end of each user turn, so undo can put files back.

A row of `ml_intern_snapshots` links a user turn (thread, base checkpoint) to the manifests taken around it;
manifests and file contents live in a BlobStore under ML_INTERN_HOME/snapshots/. A blob is kept while a kept
turn of any thread refers to it: turns that can no longer be undone (undone, their thread deleted, or older
than the thread's newest `undo.keep_turns`) lose their rows, and `prune` deletes what no row needs.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_intern.configs.schema import UndoConfig
from ml_intern.session.blobs import BlobStore, Swept
from ml_intern.session.manifests import MAX_FILE_BYTES, MAX_FILES, Manifest, Scanner, blobs_of

__all__ = ["MAX_FILES", "TurnSnapshots", "WorkspaceSnapshots"]

SWEEP_GRACE_S = 600.0  # blobs written this recently may belong to a scan still running elsewhere: kept

SCHEMA = """
CREATE TABLE IF NOT EXISTS ml_intern_snapshots (
    thread_id TEXT NOT NULL,
    base_checkpoint TEXT NOT NULL,  -- the head checkpoint the user turn started from ('' for a new thread)
    workdir TEXT NOT NULL,
    started_at REAL NOT NULL,
    start_manifest TEXT,  -- blob hash of the manifest at the start of the turn (NULL: scan failed)
    end_manifest TEXT,  -- blob hash of the manifest when the turn last stopped
    PRIMARY KEY (thread_id, base_checkpoint)
)
"""


@dataclass
class TurnSnapshots:
    """The snapshots of one user turn."""

    workdir: Path
    start: Manifest | None  # None: the scan at the start of the turn failed
    end: Manifest | None  # None: the turn never reached its end snapshot (the process died)


class WorkspaceSnapshots:
    """Takes the snapshots around user turns and links them to (thread, base checkpoint) rows."""

    def __init__(self, conn: Any, home: Path, database: Path, keep_turns: int | None = None) -> None:
        self.conn = conn
        self.home = home.resolve()
        self.store = BlobStore(self.home / "snapshots" / "blobs")
        database = database.resolve()
        self.never_scanned = {str(self.home / "snapshots"), *(f"{database}{s}" for s in ("", "-wal", "-shm"))}
        self.max_files = MAX_FILES
        self.max_file_bytes = MAX_FILE_BYTES
        self.keep_turns = keep_turns or UndoConfig().keep_turns  # per thread: older turns cannot be undone
        self.sweep_grace_s = SWEEP_GRACE_S
        self.last: dict[str, tuple[Manifest, str]] = {}  # latest manifest and its blob per workdir

    async def setup(self) -> None:
        await self.conn.execute(SCHEMA)
        await self.conn.commit()

    async def begin_turn(self, thread_id: str, base_checkpoint: str, workdir: Path) -> Manifest:
        """Record a user turn starting from `base_checkpoint`, with the workdir as it is now."""
        workdir = workdir.resolve()
        blob, started = None, time.time()  # a failed scan still gets its row, so the end snapshot lands there
        try:
            manifest, blob = await self.take(workdir)
        finally:
            await self.conn.execute(
                "INSERT OR REPLACE INTO ml_intern_snapshots"
                " (thread_id, base_checkpoint, workdir, started_at, start_manifest) VALUES (?, ?, ?, ?, ?)",
                (thread_id, base_checkpoint, str(workdir), started, blob),
            )
            await self.conn.commit()
        return manifest

    async def end_turn(self, thread_id: str) -> Manifest | None:
        """Snapshot the workdir of the thread's latest user turn as its end; forget turns past the limit."""
        async with self.conn.execute(
            "SELECT base_checkpoint, workdir FROM ml_intern_snapshots WHERE thread_id = ?"
            " ORDER BY started_at DESC LIMIT 1",
            (thread_id,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        manifest, blob = await self.take(Path(row[1]))
        await self._set(thread_id, row[0], "end_manifest", blob)
        await self.keep_newest(thread_id)
        return manifest

    async def turn(self, thread_id: str, base_checkpoint: str) -> TurnSnapshots | None:
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
        await self.conn.executemany(
            "DELETE FROM ml_intern_snapshots WHERE thread_id = ? AND base_checkpoint = ?",
            [(thread_id, base) for base in base_checkpoints],
        )
        await self.conn.commit()

    async def forget_thread(self, thread_id: str) -> None:
        """Drop every row of a deleted thread."""
        await self.conn.execute("DELETE FROM ml_intern_snapshots WHERE thread_id = ?", (thread_id,))
        await self.conn.commit()

    async def keep_newest(self, thread_id: str) -> None:
        """Forget the thread's turns beyond its newest `keep_turns`, and prune the blobs only they used."""
        async with self.conn.execute(
            "SELECT base_checkpoint FROM ml_intern_snapshots WHERE thread_id = ?"
            " ORDER BY started_at DESC LIMIT -1 OFFSET ?",
            (thread_id, self.keep_turns),
        ) as cursor:
            older = [row[0] for row in await cursor.fetchall()]
        if len(older) >= max(1, self.keep_turns // 5):  # in batches: a prune reads every kept manifest
            await self.forget(thread_id, older)
            await self.prune()

    async def prune(self) -> Swept:
        """Delete the blobs that no kept turn of any thread refers to (off the event loop)."""
        async with self.conn.execute(
            "SELECT start_manifest FROM ml_intern_snapshots WHERE start_manifest IS NOT NULL"
            " UNION SELECT end_manifest FROM ml_intern_snapshots WHERE end_manifest IS NOT NULL"
        ) as cursor:
            kept = {row[0] for row in await cursor.fetchall()}
        # The next scan reuses hashes from `last`: only from manifests whose blobs stay.
        self.last = {workdir: latest for workdir, latest in self.last.items() if latest[1] in kept}
        return await asyncio.to_thread(self._sweep, kept)

    def _sweep(self, manifests: set[str]) -> Swept:
        live = set(manifests)
        for sha in manifests:
            try:
                live |= blobs_of(self.store.get(sha))
            except FileNotFoundError:  # a lost manifest: its turn cannot be restored, nothing to keep for it
                continue
            except (OSError, ValueError, KeyError, zlib.error):  # unreadable: what it needs is unknown
                return Swept()
        return self.store.sweep(live, self.sweep_grace_s)

    async def take(self, workdir: Path) -> tuple[Manifest, str]:
        """Scan `workdir` off the event loop; return the manifest and the hash it is stored under."""
        excluded = set(self.never_scanned)
        if self.home != workdir and self.home.is_relative_to(workdir):
            excluded.add(str(self.home))
        previous, previous_blob = self.last.get(str(workdir)) or await self._latest(workdir)
        scanner = Scanner(self.store, previous, excluded, self.max_files, self.max_file_bytes)

        def snapshot() -> tuple[Manifest, str]:
            manifest = scanner.scan(workdir)
            unchanged = previous is not None and manifest.content() == previous.content()
            return manifest, previous_blob if unchanged else self.store.put(manifest.to_bytes())

        manifest, blob = await asyncio.to_thread(snapshot)
        self.last[str(workdir)] = (manifest, blob)
        return manifest, blob

    async def _latest(self, workdir: Path) -> tuple[Manifest | None, str]:
        """The newest stored manifest of `workdir` (another process's), so its hashes can be reused."""
        async with self.conn.execute(
            "SELECT COALESCE(end_manifest, start_manifest), started_at FROM ml_intern_snapshots"
            " WHERE workdir = ? AND start_manifest IS NOT NULL ORDER BY started_at DESC LIMIT 1",
            (str(workdir),),
        ) as cursor:
            row = await cursor.fetchone()
        try:  # the turn's start time is earlier than that scan: a safe bound for the racy-mtime check
            return (
                (Manifest.from_bytes(self.store.get(row[0]), int(row[1] * 1e9)), row[0])
                if row
                else (None, "")
            )
        except (OSError, ValueError, KeyError, zlib.error):
            return None, ""

    async def _set(self, thread_id: str, base_checkpoint: str, column: str, blob: str) -> None:
        await self.conn.execute(
            f"UPDATE ml_intern_snapshots SET {column} = ? WHERE thread_id = ? AND base_checkpoint = ?",
            (blob, thread_id, base_checkpoint),
        )
        await self.conn.commit()
