"""Manifests of the working directory (path -> size, mtime, sha256, mode; symlinks; skipped dirs), and scans.

A scan taken before a tool call copies each file's content once, content-addressed, into a BlobStore under
ML_INTERN_HOME/snapshots/ (never in the working directory), so undo can put it back; a scan taken after a call
only hashes. A file whose size and mtime did not change since the previous scan keeps its hash without being
read again, unless it was modified within RACY_NS of that scan (timestamps are coarse). Never copied:
credential files (by name or place: not even read), contents that look like secrets (hashed only), files over
MAX_FILE_BYTES (20 MB: not read). Skipped dirs (.git, venv, node_modules) are recorded by their mtime only, so
a change directly inside them is seen and listed, never restored. A scan stops after MAX_FILES (20,000) files.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ml_intern.secrets import is_credential_path, looks_secret
from ml_intern.session.blobs import BlobStore

MAX_FILE_BYTES = 20 * 1024 * 1024  # larger files are listed, never copied: undo reports them as not restored
MAX_FILES = 20_000  # files scanned per snapshot; changes beyond them are not tracked (undo says so)
MAX_NEW_BYTES = 512 * 1024 * 1024  # bytes read per snapshot; the rest waits for a later snapshot
SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules"})  # recorded by mtime, never entered
CACHE_DIRS = frozenset({"__pycache__", ".langgraph_api"})  # regenerated caches: not recorded at all
RACY_NS = 2_000_000_000  # files modified this close to the previous scan are hashed again (coarse mtimes)
FINE_RACY_NS = 100_000_000  # the same where mtimes have sub-second parts (the kernel's clock ticks in ms)

# Why a file's content is not in the store (Manifest.uncopied). HASH_ONLY: an after-call scan hashed it; the
# next scan before a call copies it.
CREDENTIAL, SECRET, HASH_ONLY = "credential file", "holds a secret", "hash only"
OVER_CAP, UNREAD = "over the {mb:g} MB snapshot size cap", "unreadable, or the snapshot read budget ran out"

Entry = tuple[int, int, str | None, int]  # size, mtime_ns, sha256 (None: not hashed), mode bits


@dataclass
class Manifest:
    """What the working directory held at one moment."""

    files: dict[str, Entry] = field(default_factory=dict)  # workdir-relative posix path -> entry
    dirs: set[str] = field(default_factory=set)  # workdir-relative directories
    taken_ns: int = 0  # when the scan started
    truncated: bool = False  # the scan stopped at the file cap
    links: dict[str, str] = field(default_factory=dict)  # symlink -> its target text (never followed)
    opaque: dict[str, int] = field(default_factory=dict)  # skipped dir -> its mtime_ns
    uncopied: dict[str, str] = field(default_factory=dict)  # file whose content is not stored -> why

    def content(self) -> tuple:
        """What the manifest says about the files (the scan time aside)."""
        return (self.files, self.dirs, self.truncated, self.links, self.opaque, self.uncopied)

    def to_bytes(self) -> bytes:
        """JSON without the scan time, so that identical manifests are stored once (the store compresses)."""
        data = {"files": self.files, "dirs": sorted(self.dirs), "truncated": self.truncated}
        data.update(links=self.links, opaque=self.opaque, uncopied=self.uncopied)
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, taken_ns: int = 0) -> Manifest:
        data = json.loads(raw if raw.startswith(b"{") else zlib.decompress(raw))  # older ones: zlib'd JSON
        files = {path: tuple(entry) for path, entry in data["files"].items()}
        extra = {key: data.get(key, {}) for key in ("links", "opaque", "uncopied")}  # older ones lack them
        return cls(files, set(data["dirs"]), taken_ns, data["truncated"], **extra)  # type: ignore[arg-type]


@dataclass
class Scanner:
    """One walk of a working directory (sorted, symlinks never followed)."""

    store: BlobStore
    previous: Manifest | None  # hashes are reused from it when size and mtime are unchanged
    excluded: set[str]  # absolute paths never entered (snapshot storage, ML_INTERN_HOME)
    max_files: int = MAX_FILES
    max_file_bytes: int = MAX_FILE_BYTES
    budget: int = MAX_NEW_BYTES  # bytes this scan may still read
    copy: bool = True  # store contents (before a call); False: hash only (after a call)

    def __post_init__(self) -> None:
        self.reusable = self.previous.files if self.previous else {}
        self.why_uncopied = self.previous.uncopied if self.previous else {}
        self.taken_ns = self.previous.taken_ns if self.previous else 0

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
                if entry.path in self.excluded or entry.name in CACHE_DIRS:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(rel)
                elif len(manifest.files) >= self.max_files:
                    manifest.truncated = True
                    return manifest
                elif entry.is_file(follow_symlinks=False):  # the common case, without record's checks
                    try:
                        manifest.files[rel], why = self.entry(
                            entry.path, rel, entry.stat(follow_symlinks=False)
                        )
                    except OSError:
                        continue
                    if why:
                        manifest.uncopied[rel] = why
                else:
                    self.record(manifest, entry.path, rel)
            manifest.dirs.update(d for d in subdirs if d.rsplit("/", 1)[-1] not in SKIPPED_DIRS)
            for rel in subdirs:
                if rel.rsplit("/", 1)[-1] in SKIPPED_DIRS:
                    self.record(manifest, str(workdir / rel), rel)
            pending.extend(reversed([d for d in subdirs if d in manifest.dirs]))
        return manifest

    def scan_paths(self, workdir: Path, rels: list[str]) -> Manifest:
        """Only `rels` and the directories leading to them (what a write or edit call can change)."""
        manifest = Manifest(taken_ns=time.time_ns())
        for rel in rels:
            parts = rel.split("/")
            for depth in range(1, len(parts) + 1):
                sub = "/".join(parts[:depth])
                if not self.record(manifest, str(workdir / sub), sub) or sub not in manifest.dirs:
                    break
        return manifest

    def record(self, manifest: Manifest, path: str, rel: str) -> bool:
        """Add what is at `path` to `manifest` (dir, symlink, skipped dir or file); False when nothing is."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        name = rel.rsplit("/", 1)[-1]
        if stat.S_ISLNK(st.st_mode):
            manifest.links[rel] = os.readlink(path)
        elif stat.S_ISDIR(st.st_mode) and name in SKIPPED_DIRS:
            manifest.opaque[rel] = st.st_mtime_ns
        elif stat.S_ISDIR(st.st_mode):
            manifest.dirs.add(rel)
        elif stat.S_ISREG(st.st_mode):
            manifest.files[rel], why = self.entry(path, rel, st)
            if why:
                manifest.uncopied[rel] = why
        return True

    def entry(self, path: str, rel: str, st: os.stat_result) -> tuple[Entry, str | None]:
        """The file's entry and why its content is not stored (None: stored, or not needed)."""
        size, mtime, mode = st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode)
        if credential(rel):
            return (size, mtime, None, mode), CREDENTIAL
        old, why = self.reusable.get(rel), self.why_uncopied.get(rel)
        racy = FINE_RACY_NS if mtime % 1_000_000_000 else RACY_NS
        fresh = old and old[0] == size and old[1] == mtime and mtime < self.taken_ns - racy
        if fresh and (old[2] or why) and not (self.copy and why in (HASH_ONLY, UNREAD)):
            return (size, mtime, old[2], mode), why
        if size > self.max_file_bytes:
            return (size, mtime, None, mode), OVER_CAP.format(mb=self.max_file_bytes / 2**20)
        if size > self.budget:
            return (size, mtime, None, mode), UNREAD
        try:
            with open(path, "rb") as source:
                data = source.read()
        except OSError:
            return (size, mtime, None, mode), UNREAD
        self.budget -= len(data)
        if not self.copy:
            return (size, mtime, hashlib.sha256(data).hexdigest(), mode), HASH_ONLY
        if looks_secret(data):
            return (size, mtime, hashlib.sha256(data).hexdigest(), mode), SECRET
        return (size, mtime, self.store.put(data), mode), None


@lru_cache(maxsize=1 << 16)
def credential(rel: str) -> bool:
    """`is_credential_path`, remembered: a scan asks it of every file, every call."""
    return is_credential_path(rel)


def blobs_of(raw: bytes) -> set[str]:
    """The blobs a stored manifest refers to (its copied files' contents), without building the Manifest."""
    data = json.loads(raw if raw.startswith(b"{") else zlib.decompress(raw))
    uncopied = data.get("uncopied", {})
    return {entry[2] for path, entry in data["files"].items() if entry[2] and path not in uncopied}
