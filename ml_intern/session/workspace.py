"""Snapshots of the working directory at the start and end of each user turn, so undo can put files back.

A snapshot is a manifest (path -> size, mtime, sha256, mode) plus each file's content stored once,
content-addressed, under ML_INTERN_HOME/snapshots/ (never in the working directory). A file whose size and
mtime did not change since the previous snapshot keeps its hash without being read again, unless it was
modified within RACY_NS of that snapshot (timestamps are coarse). Limits: files over MAX_FILE_BYTES (20 MB)
are listed but not copied, a scan stops after MAX_FILES (20,000) files, and reads at most MAX_NEW_BYTES.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import stat
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 20 * 1024 * 1024  # larger files are listed, never copied: undo reports them as not restored
MAX_FILES = 20_000  # files scanned per snapshot; changes beyond them are not tracked (undo says so)
MAX_NEW_BYTES = 512 * 1024 * 1024  # bytes read per snapshot; the rest waits for a later snapshot
SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".langgraph_api"})
SECRET_FILES = re.compile(r"^\.env(\..*)?$|\.(pem|key)$")  # never copied into the snapshot store
RACY_NS = 2_000_000_000  # files modified this close to the previous scan are hashed again (coarse mtimes)

Entry = tuple[int, int, str | None, int]  # size, mtime_ns, sha256 (None: not snapshotted), mode bits

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
class Manifest:
    """What the working directory held at one moment."""

    files: dict[str, Entry] = field(default_factory=dict)  # workdir-relative posix path -> entry
    dirs: set[str] = field(default_factory=set)  # workdir-relative directories
    taken_ns: int = 0  # when the scan started
    truncated: bool = False  # the scan stopped at the file cap

    def content(self) -> tuple:
        """What the manifest says about the files (the scan time aside)."""
        return (self.files, self.dirs, self.truncated)

    def to_bytes(self) -> bytes:
        """Compressed JSON without the scan time, so that identical manifests are stored once."""
        data = {"files": self.files, "dirs": sorted(self.dirs), "truncated": self.truncated}
        return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, raw: bytes, taken_ns: int = 0) -> Manifest:
        data = json.loads(zlib.decompress(raw))
        files = {path: tuple(entry) for path, entry in data["files"].items()}
        return cls(files, set(data["dirs"]), taken_ns, data["truncated"])  # type: ignore[arg-type]


class BlobStore:
    """Content-addressed files: each distinct content is stored once, under its sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha: str) -> str:
        return f"{self.root}/{sha[:2]}/{sha[2:]}"  # a string: the scan calls this per file

    def put(self, data: bytes) -> str:
        """Store `data` unless already stored; return its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            partial = f"{target}.{os.getpid()}-{threading.get_ident()}.part"
            with open(partial, "wb") as out:
                out.write(data)
            os.replace(partial, target)  # readers never see a half-written blob
        return sha

    def get(self, sha: str) -> bytes:
        return Path(self.path(sha)).read_bytes()


@dataclass
class Scanner:
    """One walk of a working directory (sorted, symlinks never followed)."""

    store: BlobStore
    previous: Manifest | None  # hashes are reused from it when size and mtime are unchanged
    excluded: set[str]  # absolute paths never entered (snapshot storage, ML_INTERN_HOME)
    max_files: int = MAX_FILES
    max_file_bytes: int = MAX_FILE_BYTES
    budget: int = MAX_NEW_BYTES  # bytes this scan may still read

    def __post_init__(self) -> None:
        self.reusable = self.previous.files if self.previous else {}
        self.trusted_before = self.previous.taken_ns - RACY_NS if self.previous else 0

    def scan(self, workdir: Path) -> Manifest:
        manifest = Manifest(taken_ns=time.time_ns())
        pending = [""]
        while pending:
            folder = pending.pop()
            try:
                entries = sorted(os.scandir(workdir / folder), key=lambda e: e.name)
            except OSError:
                continue
            subdirs = []
            for entry in entries:
                rel = f"{folder}/{entry.name}" if folder else entry.name
                if entry.path in self.excluded:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subdirs += [] if entry.name in SKIPPED_DIRS else [rel]
                elif entry.is_file(follow_symlinks=False) and not SECRET_FILES.search(entry.name):
                    if len(manifest.files) >= self.max_files:
                        manifest.truncated = True
                        return manifest
                    manifest.files[rel] = self.entry(entry, rel)
            manifest.dirs.update(subdirs)
            pending.extend(reversed(subdirs))
        return manifest

    def entry(self, item: os.DirEntry, rel: str) -> Entry:
        """The file's entry, reading it only when its size or mtime changed (or may have: racy mtime)."""
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:
            return (0, 0, None, 0)
        size, mtime, mode = st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode)
        old = self.reusable.get(rel)
        if old and old[0] == size and old[1] == mtime and old[2] and mtime < self.trusted_before:
            return (size, mtime, old[2], mode)
        if size > self.max_file_bytes or size > self.budget:
            return (size, mtime, None, mode)
        try:
            with open(item.path, "rb") as source:
                data = source.read()
        except OSError:
            return (size, mtime, None, mode)
        self.budget -= len(data)
        return (size, mtime, self.store.put(data), mode)


def file_state(path: Path, max_file_bytes: int = MAX_FILE_BYTES) -> Entry | None:
    """What is at `path` now: None when nothing is; a sha of None when it cannot be hashed."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    entry = (st.st_size, st.st_mtime_ns, None, stat.S_IMODE(st.st_mode))
    if not stat.S_ISREG(st.st_mode) or st.st_size > max_file_bytes:
        return entry
    return (*entry[:2], hashlib.sha256(path.read_bytes()).hexdigest(), entry[3])


def same_content(a: Entry | None, b: Entry | None) -> bool:
    """Both absent, or both hashed with the same content."""
    if a is None or b is None:
        return a is b
    return a[2] is not None and a[2] == b[2]


def changed_paths(start: Manifest, end: Manifest) -> set[str]:
    """Files that differ between two manifests; with a truncated one, only paths it saw."""
    paths = set()
    for path in start.files.keys() | end.files.keys():
        a, b = start.files.get(path), end.files.get(path)
        if a is None or b is None or a[2] is None or b[2] is None:
            differs = a is None or b is None or a[:2] != b[:2]
        else:
            differs = (a[0], a[2], a[3]) != (b[0], b[2], b[3])
        seen = (path in start.files or not start.truncated) and (path in end.files or not end.truncated)
        if differs and seen:
            paths.add(path)
    return paths


@dataclass
class TurnSnapshots:
    """The snapshots of one user turn."""

    workdir: Path
    start: Manifest | None  # None: the scan at the start of the turn failed
    end: Manifest | None  # None: the turn never reached its end snapshot (the process died)


class WorkspaceSnapshots:
    """Takes the snapshots around user turns and links them to (thread, base checkpoint) rows."""

    def __init__(self, conn: Any, home: Path, database: Path) -> None:
        self.conn = conn
        self.home = home.resolve()
        self.store = BlobStore(self.home / "snapshots" / "blobs")
        database = database.resolve()
        self.never_scanned = {str(self.home / "snapshots"), *(f"{database}{s}" for s in ("", "-wal", "-shm"))}
        self.max_files = MAX_FILES
        self.max_file_bytes = MAX_FILE_BYTES
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
        """Snapshot the workdir of the thread's latest user turn as that turn's end."""
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
        await self.conn.executemany(
            "DELETE FROM ml_intern_snapshots WHERE thread_id = ? AND base_checkpoint = ?",
            [(thread_id, base) for base in base_checkpoints],
        )
        await self.conn.commit()

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
