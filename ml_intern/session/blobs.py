"""Content-addressed storage for workspace snapshots: each distinct content stored once, zlib-compressed.

A blob lives under its content's sha256 (`ab/cdef...`), compressed (`ab/cdef....z`) unless that does not pay;
blobs written uncompressed, by this version or an older one, sit at the bare path and are read as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

COMPRESSED = ".z"  # suffix of a compressed blob
LEVEL = 1  # zlib level: snapshots run at every turn, so speed first (text still shrinks 3-5x)
PROBE_BYTES = 64 * 1024  # large contents are test-compressed on their first bytes (weights do not shrink)
WORTH_IT = 0.9  # stored compressed only below this fraction of the original size
PARTIAL = ".part"  # a blob being written; left behind only by a crash


@dataclass
class Swept:
    """What one sweep removed."""

    blobs: int = 0
    bytes: int = 0


class BlobStore:
    """Content-addressed files: each distinct content is stored once, under its sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha: str) -> str:
        """Where the uncompressed form of `sha` lives (a string: the scan calls this per file)."""
        return f"{self.root}/{sha[:2]}/{sha[2:]}"

    def put(self, data: bytes) -> str:
        """Store `data` unless already stored; return its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        plain = self.path(sha)
        for stored in (plain + COMPRESSED, plain):
            with contextlib.suppress(FileNotFoundError):
                os.utime(stored)  # in use again: a sweep running elsewhere must treat it as new
                return sha
        packed = compressed(data)
        target, body = (plain, data) if packed is None else (plain + COMPRESSED, packed)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = f"{target}.{os.getpid()}-{threading.get_ident()}{PARTIAL}"
        with open(partial, "wb") as out:
            out.write(body)
        os.replace(partial, target)  # readers never see a half-written blob
        return sha

    def keep(self, sha: str) -> bool:
        """Mark `sha` as in use (a sweep elsewhere then spares it); False when it is not stored."""
        plain = self.path(sha)
        for stored in (plain + COMPRESSED, plain):
            with contextlib.suppress(FileNotFoundError):
                os.utime(stored)
                return True
        return False

    def get(self, sha: str) -> bytes:
        """The content stored under `sha`; FileNotFoundError when it is not stored."""
        plain = self.path(sha)
        try:
            with open(plain + COMPRESSED, "rb") as stored:
                return zlib.decompress(stored.read())
        except FileNotFoundError:
            return Path(plain).read_bytes()

    def sweep(self, live: set[str], grace_s: float) -> Swept:
        """Delete every blob not in `live` unless it was written (or reused) within the last `grace_s`."""
        swept, cutoff = Swept(), time.time() - grace_s
        for entry, sha in self._entries():
            partial = entry.name.endswith(PARTIAL)
            if sha in live and not partial:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if info.st_mtime > cutoff:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            swept.blobs += not partial
            swept.bytes += info.st_size
        return swept

    def _entries(self) -> Iterator[tuple[os.DirEntry, str]]:
        """Every file of the store with the sha it holds (fan-out folders stay: a writer may be using one)."""
        try:
            folders = [f for f in os.scandir(self.root) if len(f.name) == 2 and f.is_dir()]
        except FileNotFoundError:
            return
        for folder in folders:
            with os.scandir(folder.path) as entries:
                files = list(entries)
            for entry in files:
                yield entry, folder.name + entry.name.split(".", 1)[0]


def compressed(data: bytes) -> bytes | None:
    """`data` compressed, or None when compressing does not make it markedly smaller."""
    if len(data) > 4 * PROBE_BYTES:
        probe = data[:PROBE_BYTES]
        if len(zlib.compress(probe, LEVEL)) > WORTH_IT * len(probe):
            return None
    packed = zlib.compress(data, LEVEL)
    return packed if len(packed) < WORTH_IT * len(data) else None
