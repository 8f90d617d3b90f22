"""Put back what undone tool calls changed, newest call first, and only where the path still holds what the
agent left; everything else is listed with the reason it was left alone."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.session import safe_paths
from ml_intern.session.blobs import COMPRESSED, BlobStore
from ml_intern.session.changes import State, same
from ml_intern.session.journal import CallRow
from ml_intern.session.manifests import RACY_NS
from ml_intern.session.trash import NotKept, Trash

CHANGED_SINCE = "changed since, by you or another process: left as it is"
BETWEEN_CALLS = "changed between the agent's calls: put back as it was then, not further"
NO_COPY = "its copy from before is not in this ML_INTERN_HOME's snapshot store: left as it is"


@dataclass
class FileRewind:
    """The file changes an undo makes, planned newest call first, then applied."""

    workdir: Path = Path()
    cap: int = 0  # files over this size are compared by size and mtime, not hashed
    put: dict[str, State] = field(default_factory=dict)  # path -> the state to put back
    found: dict[str, State] = field(default_factory=dict)  # path -> what it holds now (checked again)
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # shown path -> why it was (partly) left alone
    trash: Trash | None = None  # where what is removed or replaced goes first
    store: BlobStore | None = None  # the before-copies: a path whose copy is not there is never touched

    def plan_call(self, row: CallRow, others: dict[str, str]) -> None:
        """Rewind one batch's changes on top of what later batches' rewinds already planned."""
        kept = renamed_away(row)
        for rel, before, after in row.changes or []:
            if rel in self.refused:
                continue
            if rel in others:
                self.refused[rel] = f"also changed while a call of thread {others[rel]} ran: left as it is"
                continue
            later = rel in self.put
            try:
                now = self.put[rel] if later else safe_paths.state_at(self.workdir, rel, self.cap)
            except safe_paths.Unsafe as exc:
                if not self.relinked(rel):
                    self.refused[rel] = f"not followed: {exc}; left as it is"
                    continue
                now = None  # under a symlink the agent put in place of a directory, which goes first
            why = self.uncopied(before) or refusal(before, after, now, kept.get(rel))
            if why == CHANGED_SINCE and later:
                self.refused[rel] = BETWEEN_CALLS
            elif why:
                self.refused[rel] = why
            else:
                self.found.setdefault(rel, now)
                self.put[rel] = before

    def uncopied(self, before: State) -> str | None:
        """NO_COPY when `before` is a file whose copy the local store lacks (checked before a file moves)."""
        if self.store is None or before is None or before[0] != "file" or not before[3] or before[5]:
            return None
        plain = self.store.path(before[3])  # looked at, not touched: a sweep's grace is for blobs in use
        return None if os.path.exists(plain + COMPRESSED) or os.path.exists(plain) else NO_COPY

    def relinked(self, rel: str) -> bool:
        """Whether a directory above `rel` is a symlink the plan replaces by the directory it was."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            up = "/".join(parts[:depth])
            found, want = self.found.get(up), self.put.get(up)
            if found and want and found[0] == "link" and want[0] == "dir":
                return True
        return False

    def apply(self, store: BlobStore) -> None:
        """Move aside files and links, make directories, write files and links, then drop emptied directories.

        What a path holds now is moved to the trash before it is removed or replaced (the call's result may
        be the user's bytes, written while it ran); a path that cannot be moved aside is left as it is."""
        assert self.trash is not None, "a FileRewind that changes files needs a trash"
        trash, plan = (
            self.trash,
            [
                (rel, self.found[rel], want)
                for rel, want in self.put.items()
                if not same(self.found[rel], want)
            ],
        )
        deep = sorted(plan, key=lambda item: -item[0].count("/"))
        held = set()  # paths left as they are: nothing is written over them
        for rel, now, want in deep:
            if now is not None and now[0] in ("file", "link") and not _mode_only(now, want):
                step = None if want is not None else True  # a replaced path counts once it is written
                if not self._do(rel, lambda r=rel: trash.keep(self.workdir, r), step, now):
                    held.add(rel)
        for rel, now, want in reversed(deep):
            if want is not None and want[0] == "dir" and (now is None or now[0] != "dir") and rel not in held:
                self._do(rel + "/", lambda r=rel: safe_paths.make_dir(self.workdir, r), False, None)
        for rel, _, want in plan:
            if want is not None and want[0] in ("file", "link") and rel not in held:
                self._do(rel, lambda r=rel, w=want: self._write(store, r, w), False, None)
        for rel, now, want in deep:
            if now is not None and now[0] == "dir" and (want is None or want[0] != "dir"):
                self._do(rel + "/", lambda r=rel: safe_paths.remove_if_empty(self.workdir, r), True, None)

    def _write(self, store: BlobStore, rel: str, want: list) -> bool:
        if want[0] == "link":
            safe_paths.write_link(self.workdir, rel, want[1])
        else:
            safe_paths.write_file(self.workdir, rel, store.get(want[3]), want[4])
        return True

    def _do(self, shown: str, action, removal: bool | None, expected: State) -> bool:
        """Run one step (whether it was done); a removal first checks the path still holds the agent's.

        `removal`: listed as removed (True), as restored (False) or not at all (None)."""
        rel = shown.rstrip("/")
        try:
            if expected is not None and not same(safe_paths.state_at(self.workdir, rel, self.cap), expected):
                self.refused[shown] = CHANGED_SINCE
                return False
            if action() is False:
                self.refused[shown] = "not empty: left as it is"
                return False
        except NotKept as exc:
            self.refused[shown] = f"left as it is: could not be kept aside ({exc})"
            return False
        except safe_paths.Unsafe as exc:
            self.refused[shown] = f"not followed: {exc}; left as it is"
            return False
        except OSError as exc:
            self.refused[shown] = f"could not be put back: {exc.strerror or exc}"
            return False
        if removal:
            self.removed.append(shown)
        elif removal is False and shown not in self.restored:
            self.restored.append(shown)
        return True


def _mode_only(now: State, want: State) -> bool:
    """Whether `now` differs from `want` by its mode only (no bytes to keep aside)."""
    return bool(now and want and now[0] == want[0] == "file" and now[3] and now[3] == want[3])


def refusal(before: State, after: State, now: State, original: str | None) -> str | None:
    """Why a path a call changed must be left alone, or None when it can be put back."""
    for state in (before, after):
        if state is not None and state[0] == "opaque":
            return "a directory undo does not look inside (never copied): left as it is"
        if state is not None and state[0] == "other":
            return "not a file, directory or symlink: left as it is"
    if before is not None and before[0] == "file" and before[5]:
        return f"never copied ({before[5]}): left as it is"
    if not same(now, after):
        return CHANGED_SINCE
    if before is None and original:
        return f"may be the only copy of {original}, which undo cannot restore: kept"
    return None


def renamed_away(row: CallRow) -> dict[str, str]:
    """Files the batch created that may be the only copy of something it moved -> what that may be.

    A move keeps size and mtime, while a file the batch wrote is newer than the batch: a created file older
    than the batch is kept unless it matches a removed file undo puts back (a rename of a copied file)."""
    removed: dict[tuple[int, int], tuple[str, bool]] = {}  # (size, mtime) -> (path, copied)
    for rel, before, after in row.changes or []:
        if before and before[0] == "file" and (after is None or after[0] != "file"):
            removed[(before[1], before[2])] = (rel, not before[5])
    kept = {}
    newer_than = int(row.started_at * 1e9) - RACY_NS  # coarse file system clocks
    for rel, before, after in row.changes or []:
        if before is not None or after is None or after[0] != "file":
            continue
        source, copied = removed.get((after[1], after[2]), ("", False))
        if source and not copied:
            kept[rel] = source
        elif not source and after[2] < newer_than:
            kept[rel] = "something undo does not track (outside, or in venv/, .git, ...)"
    return kept
