"""Manifests of the working directory (path -> size, mtime, sha256, mode) and the scan that takes them.

Each file's content is stored once, content-addressed, in a BlobStore under ML_INTERN_HOME/snapshots/ (never
in the working directory). A file whose size and mtime did not change since the previous snapshot keeps its
hash without being read again, unless it was modified within RACY_NS of that snapshot (timestamps are coarse).
Limits: files over MAX_FILE_BYTES (20 MB) are listed but not copied, a scan stops after MAX_FILES (20,000)
files, and reads at most MAX_NEW_BYTES.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.session.blobs import BlobStore

MAX_FILE_BYTES = 20 * 1024 * 1024  # larger files are listed, never copied: undo reports them as not restored
MAX_FILES = 20_000  # files scanned per snapshot; changes beyond them are not tracked (undo says so)
MAX_NEW_BYTES = 512 * 1024 * 1024  # bytes read per snapshot; the rest waits for a later snapshot
SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".langgraph_api"})
SECRET_FILES = re.compile(r"^\.env(\..*)?$|\.(pem|key)$")  # never copied into the snapshot store
RACY_NS = 2_000_000_000  # files modified this close to the previous scan are hashed again (coarse mtimes)

Entry = tuple[int, int, str | None, int]  # size, mtime_ns, sha256 (None: not snapshotted), mode bits


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
        """JSON without the scan time, so that identical manifests are stored once (the store compresses)."""
        data = {"files": self.files, "dirs": sorted(self.dirs), "truncated": self.truncated}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, taken_ns: int = 0) -> Manifest:
        data = json.loads(raw if raw.startswith(b"{") else zlib.decompress(raw))  # older ones: zlib'd JSON
        files = {path: tuple(entry) for path, entry in data["files"].items()}
        return cls(files, set(data["dirs"]), taken_ns, data["truncated"])  # type: ignore[arg-type]


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


def blobs_of(raw: bytes) -> set[str]:
    """The blobs a stored manifest refers to (its files' contents), without building the Manifest."""
    data = json.loads(raw if raw.startswith(b"{") else zlib.decompress(raw))
    return {entry[2] for entry in data["files"].values() if entry[2]}
