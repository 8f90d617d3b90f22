"""File operations inside the working directory that never follow a symlink: every directory on the way is
opened relative to its parent with O_NOFOLLOW, so a symlink swapped in (even mid-way) cannot lead out."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml_intern.session.changes import State
from ml_intern.session.manifests import SKIPPED_DIRS

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class Unsafe(Exception):
    """A directory on the way is a symlink (or not a directory): nothing is read or written through it."""


@contextmanager
def parent_of(workdir: Path, rel: str, create: bool = False) -> Iterator[int]:
    """A descriptor of `rel`'s directory, reached without following symlinks (made when `create`)."""
    fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in rel.split("/")[:-1]:
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, dir_fd=fd)
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise Unsafe(f"{part} on the way is a symlink or not a directory") from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def state_at(workdir: Path, rel: str, cap: int) -> State:
    """What is at `rel` now, in the form of changes.State (files over `cap` are not hashed)."""
    name = rel.rsplit("/", 1)[-1]
    try:
        with parent_of(workdir, rel) as fd:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                return ["link", os.readlink(name, dir_fd=fd)]
            if stat.S_ISDIR(st.st_mode):
                return ["opaque", st.st_mtime_ns] if name in SKIPPED_DIRS else ["dir"]
            if not stat.S_ISREG(st.st_mode):
                return ["other"]
            sha = _hash(fd, name) if st.st_size <= cap else None
            return ["file", st.st_size, st.st_mtime_ns, sha, stat.S_IMODE(st.st_mode), None]
    except FileNotFoundError:
        return None


def _hash(dir_fd: int, name: str) -> str:
    digest = hashlib.sha256()
    with os.fdopen(os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd), "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_file(workdir: Path, rel: str, data: bytes, mode: int) -> None:
    """Put `data` at `rel` (atomically, through a temporary beside it)."""
    name = rel.rsplit("/", 1)[-1]
    temporary = f".{name}.ml-intern-undo"
    with parent_of(workdir, rel, create=True) as fd:
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        with os.fdopen(out, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)


def write_link(workdir: Path, rel: str, target: str) -> None:
    """Make `rel` a symlink to `target` (the link itself: nothing is written through it)."""
    name = rel.rsplit("/", 1)[-1]
    temporary = f".{name}.ml-intern-undo"
    with parent_of(workdir, rel, create=True) as fd:
        os.symlink(target, temporary, dir_fd=fd)
        os.replace(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)


def make_dir(workdir: Path, rel: str) -> None:
    with parent_of(workdir, rel, create=True) as fd:
        os.mkdir(rel.rsplit("/", 1)[-1], dir_fd=fd)


def unlink(workdir: Path, rel: str) -> None:
    """Remove the file or symlink at `rel` (a symlink's target is never touched)."""
    with parent_of(workdir, rel) as fd:
        os.unlink(rel.rsplit("/", 1)[-1], dir_fd=fd)


def remove_if_empty(workdir: Path, rel: str) -> bool:
    """Remove the directory `rel` when it holds nothing (bytecode caches aside)."""
    name = rel.rsplit("/", 1)[-1]
    with parent_of(workdir, rel) as fd:
        try:
            inner = os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError:
            return False
        try:
            contents = os.listdir(inner)
            if any(child != "__pycache__" for child in contents):
                return False
            for child in contents:
                shutil.rmtree(child, dir_fd=inner)
        finally:
            os.close(inner)
        os.rmdir(name, dir_fd=fd)
        return True
