"""Put back the files undone turns changed, from their snapshots; leave alone what changed since."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.session.blobs import BlobStore
from ml_intern.session.manifests import MAX_FILES, Entry, changed_paths, file_state, same_content
from ml_intern.session.workspace import TurnSnapshots


@dataclass
class FileRewind:
    """The file changes an undo makes, planned newest turn first, then applied."""

    planned: dict[Path, tuple[str, Entry | None]] = field(default_factory=dict)  # path -> (shown, put back)
    dirs: dict[Path, tuple[str, bool]] = field(default_factory=dict)  # dir -> (shown, must exist)
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # shown path -> why it was left alone

    def plan_turn(self, turn: TurnSnapshots, latest: bool, cap: int) -> None:
        """Rewind one turn's changes on top of what later turns' rewinds already planned."""
        start, end = turn.start, turn.end
        assert start is not None and end is not None
        if start.truncated or end.truncated:
            self.refused["(working directory)"] = f"over {MAX_FILES} files: only the first were snapshotted"
        for rel in sorted(changed_paths(start, end)):
            path = turn.workdir / rel
            if rel in self.refused:
                continue
            now = self.planned[path][1] if path in self.planned else file_state(path, cap)
            why = refusal(now, start.files.get(rel), end.files.get(rel), cap, path in self.planned)
            if why:
                self.refused[rel] = why
            else:
                self.planned[path] = (rel, start.files.get(rel))
        self.dirs.update({turn.workdir / d: (d, False) for d in end.dirs - start.dirs})
        self.dirs.update({turn.workdir / d: (d, True) for d in start.dirs - end.dirs})

    def apply(self, store: BlobStore) -> None:
        """Put files back, delete created ones, then fix directories (deepest first)."""
        for path, (rel, entry) in self.planned.items():
            try:
                now = file_state(path)
                if same_content(now, entry) and (entry is None or now is None or now[3] == entry[3]):
                    continue
                if entry is None:
                    path.unlink()
                    self.removed.append(rel)
                else:
                    write_back(path, store.get(entry[2] or ""), entry[3])
                    self.restored.append(rel)
            except OSError as exc:
                self.refused[rel] = f"could not be put back: {exc.strerror or exc}"
        for path, (rel, wanted) in sorted(self.dirs.items(), key=lambda item: -len(item[0].parts)):
            try:
                if wanted and not path.exists():
                    path.mkdir(parents=True)
                    self.restored.append(rel + "/")
                elif not wanted and remove_if_empty(path):
                    self.removed.append(rel + "/")
            except OSError as exc:
                self.refused[rel + "/"] = f"could not be put back: {exc.strerror or exc}"


def refusal(
    now: Entry | None, before: Entry | None, after: Entry | None, cap: int, partly: bool
) -> str | None:
    """Why a path the turn changed must be left alone, or None when it can be rewound."""
    for entry in (before, after):
        if entry is not None and entry[2] is None:
            if entry[0] > cap:
                return f"over the {cap / 2**20:g} MB snapshot size cap"
            return "not snapshotted (unreadable, or the snapshot read budget ran out)"
    if same_content(now, after):
        return None
    if partly:
        return "changed between the undone turns: rewound only to the start of the later turn"
    return "changed since the turn: left as it is"


def write_back(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.ml-intern-undo")
    temporary.write_bytes(data)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def remove_if_empty(path: Path) -> bool:
    """Remove a directory holding nothing (bytecode caches aside)."""
    if path.is_symlink() or not path.is_dir():
        return False
    contents = list(path.iterdir())
    if any(child.name != "__pycache__" for child in contents):
        return False
    for child in contents:
        shutil.rmtree(child)
    path.rmdir()
    return True
