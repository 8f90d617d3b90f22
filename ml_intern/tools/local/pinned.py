"""Files inside the sandbox's writable places that stay read-only there, found by looking (places.py lists
the ones known by name): files hard-linked from elsewhere, whose bytes a write would change outside too,
and the code files of the Hub cache, which `trust_remote_code` later runs unconfined.

Both scans are bounded: past MAX_SCANNED entries (or MAX_PINNED files) the rest stays writable, and a note
says so. A hard link is harmless when all its links are found inside the scanned places; we cannot tell where
the others are, so any file with more links than we saw is pinned.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

MAX_SCANNED = 20_000  # entries looked at across the working directory and roots
MAX_PINNED = 5_000  # read-only binds of each kind
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
CODE_SUFFIXES = (".py", ".so")


def hard_linked(roots: Iterable[Path], notes: list[str]) -> list[Path]:
    """Regular files under `roots` with a link we did not see among the scanned entries."""
    seen: dict[tuple[int, int], list[Path]] = {}
    links: dict[tuple[int, int], int] = {}
    budget = MAX_SCANNED
    stack = [root for root in roots if root.is_dir()]
    while stack and budget > 0:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries[:budget]:
            budget -= 1
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS:
                        stack.append(Path(entry.path))
                    continue
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                seen.setdefault((info.st_dev, info.st_ino), []).append(Path(entry.path))
                links[(info.st_dev, info.st_ino)] = info.st_nlink
    if budget <= 0:
        notes.append(f"only the first {MAX_SCANNED} entries were checked for hard links")
    pinned = [path for key, paths in seen.items() if len(paths) < links[key] for path in paths]
    return capped(pinned, "hard-linked files", notes)


def hub_code_blobs(hub_caches: Iterable[Path], notes: list[str]) -> list[Path]:
    """The blobs that `.py`/`.so` files in the Hub cache's `models--org--name/snapshots/` lead to."""
    found: list[Path] = []
    for hub in hub_caches:
        for snapshots in hub.glob("*--*/snapshots") if hub.is_dir() else []:
            for folder, _, files in os.walk(snapshots):
                for name in files:
                    if name.endswith(CODE_SUFFIXES) and (target := Path(folder, name).resolve()).is_file():
                        found.append(target)
                if len(found) > MAX_PINNED:
                    return capped(found, "Hub cache code files", notes)
    return found


def capped(paths: list[Path], what: str, notes: list[str]) -> list[Path]:
    """At most MAX_PINNED of `paths`; a note when some are left writable."""
    if len(paths) > MAX_PINNED:
        notes.append(f"only {MAX_PINNED} {what} are read-only in the sandbox; the rest stay writable")
    return paths[:MAX_PINNED]
