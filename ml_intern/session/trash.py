"""Undo's trash: whatever undo removes or overwrites in the working directory is first moved to
ML_INTERN_HOME/undo-trash/<UTC time>-<thread>/<path> and kept there KEEP_DAYS days, so undo never destroys
bytes (what was written while a call ran is blamed on the call, and may be the user's). Nothing is followed
through a symlink; a symlink is moved as a link. Credential files, files holding a secret and files over the
snapshot cap are never moved aside: undo leaves them as they are."""

from __future__ import annotations

import calendar
import contextlib
import errno
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.secrets import is_credential_path, looks_secret
from ml_intern.session import safe_paths

KEEP_DAYS = 14
STAMP = "%Y%m%dT%H%M%SZ"
FOLDER = re.compile(r"^(\d{8}T\d{6}Z)-")
NO_COPY = "undo keeps no copy of one"


class NotKept(Exception):
    """Why a path could not be moved aside (undo then leaves it as it is)."""


def rename(name: str, src: int, dst: int) -> None:
    """Move `name` from one directory descriptor to another (EXDEV across file systems)."""
    os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)


def write_copy(name: str, dst: int, data: bytes, st: os.stat_result) -> None:
    """Write `data` as `name` in `dst` with the mode and times of `st` (a copy across file systems)."""
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dst)
    with os.fdopen(out, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fchmod(handle.fileno(), stat.S_IMODE(st.st_mode))
        os.fsync(handle.fileno())
        os.utime(handle.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))


@dataclass
class Trash:
    """The trash folder of one undo, made when the first path is moved aside."""

    root: Path  # ML_INTERN_HOME/undo-trash
    thread_id: str
    cap: int  # files over this size are never moved aside
    folder: Path | None = None
    kept: list[str] = field(default_factory=list)  # workdir-relative paths now under `folder`

    def keep(self, workdir: Path, rel: str) -> None:
        """Move the file or symlink at `rel` to the same path under the trash folder, or raise NotKept."""
        name = rel.rsplit("/", 1)[-1]
        try:
            with safe_paths.parent_of(workdir, rel) as src:
                st = os.stat(name, dir_fd=src, follow_symlinks=False)
                data = None if stat.S_ISLNK(st.st_mode) else self._readable(src, name, rel, st)
                with safe_paths.parent_of(self._folder(), rel, create=True) as dst:
                    if _exists(name, dst):
                        raise NotKept("the trash folder already holds that path")
                    try:
                        rename(name, src, dst)
                    except OSError as exc:
                        if exc.errno != errno.EXDEV:
                            raise
                        _copy_then_remove(name, src, dst, data, st)
        except OSError as exc:
            raise NotKept(exc.strerror or str(exc)) from None
        self.kept.append(rel)

    def _readable(self, src: int, name: str, rel: str, st: os.stat_result) -> bytes:
        """The file's bytes, when it may be kept: never a credential, a secret or a file over the cap."""
        if is_credential_path(rel):
            raise NotKept(f"a credential file: {NO_COPY}")
        if st.st_size > self.cap:
            raise NotKept(f"over the {self.cap / 2**20:g} MB snapshot cap")
        with os.fdopen(os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src), "rb") as source:
            data = source.read()
        if looks_secret(data):
            raise NotKept(f"holds a secret: {NO_COPY}")
        return data

    def _folder(self) -> Path:
        if self.folder is None:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            base = (
                f"{time.strftime(STAMP, time.gmtime())}-{re.sub(r'[^A-Za-z0-9_-]', '_', self.thread_id[:8])}"
            )
            for n in range(1, 1000):
                folder = self.root / (base if n == 1 else f"{base}-{n}")
                try:
                    folder.mkdir(mode=0o700)
                except FileExistsError:
                    continue
                self.folder = folder
                break
            else:
                raise NotKept("no free trash folder name")
        return self.folder


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _copy_then_remove(name: str, src: int, dst: int, data: bytes | None, st: os.stat_result) -> None:
    """Across file systems: copy (a link as a link), check the source did not change meanwhile, remove it."""
    try:
        if data is None:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        else:
            write_copy(name, dst, data, st)
        now = os.stat(name, dir_fd=src, follow_symlinks=False)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
            raise NotKept("changed while it was being copied")
    except (OSError, NotKept):
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dst)
        raise
    os.unlink(name, dir_fd=src)


def prune(root: Path, now: float | None = None, days: float = KEEP_DAYS) -> list[str]:
    """Delete the trash folders older than `days` (only folders undo made); the names deleted."""
    limit = (time.time() if now is None else now) - days * 86400
    gone = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return gone
    for entry in entries:
        match = FOLDER.match(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            made = calendar.timegm(time.strptime(match.group(1), STAMP))
        except (ValueError, OverflowError):
            continue
        if made < limit:
            shutil.rmtree(entry.path, ignore_errors=True)
            gone.append(entry.name)
    return gone
