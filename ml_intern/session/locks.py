"""One writer per thread: an OS file lock per thread under ML_INTERN_HOME/locks, holding who has it.

The kernel drops a `flock` when its process dies, so a crash (even `kill -9`) never leaves a stale lock (the
file stays, unlocked, until the next holder removes it on release). On a shared Postgres the locks are the
database's instead (db_locks.py, same interface); `ThreadLocks` holds either kind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from ml_intern.errors import EXIT_USAGE, UserError
from ml_intern.session.lock_watch import WATCH_S, watching

try:
    import fcntl
except ImportError:  # Windows: no flock; threads are not locked there (msvcrt locks are not advisory)
    fcntl = None  # type: ignore[assignment]


class HeldLock(Protocol):
    """A lock this process holds on one thread: a lock file here, a database's advisory lock (db_locks.py)."""

    thread_id: str

    @property
    def held(self) -> bool: ...

    def describe(self, doing: str) -> None: ...

    def release(self) -> None: ...


Lock = TypeVar("Lock", bound="HeldLock | None")


class ThreadBusy(UserError):
    """Another process is working on the thread; the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def busy_line(thread_id: str, holder: dict) -> str:
    """The one line a second process prints, naming the first."""
    since = time.strftime("%H:%M:%S", time.localtime(holder.get("since") or time.time()))
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
    return (
        f"thread {thread_id} is busy: {who} is {holder.get('doing') or 'using it'} (since {since}); "
        "wait for it to finish, or stop that process"
    )


@dataclass
class ThreadLock:
    """A held lock on one thread: an open, flocked file with a JSON description of the holder."""

    thread_id: str
    path: Path
    fd: int

    @property
    def held(self) -> bool:
        return self.fd >= 0

    def describe(self, doing: str) -> None:
        """Say what this process is doing with the thread (shown to a second process)."""
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "doing": doing, "since": time.time()}
        data = json.dumps(holder).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """Remove the file, then drop the lock (closing the only descriptor does)."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = -1


def locks_dir(home: Path) -> Path:
    return home / "locks"


def _holder(fd: int) -> dict:
    """The description the holder wrote ({} while it is still writing it)."""
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}


def acquire(home: Path, thread_id: str, doing: str) -> ThreadLock | None:
    """Lock `thread_id` for this process, without waiting; ThreadBusy when another process holds it.
    None where there is no flock (Windows): the thread is then not locked."""
    if fcntl is None:
        return None
    path = locks_dir(home) / f"{thread_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ThreadBusy(busy_line(thread_id, holder)) from None
        except OSError:
            os.close(fd)
            raise
        if _still_named(fd, path):
            break
        os.close(fd)  # the holder released and removed this file meanwhile: lock the new one
    lock = ThreadLock(thread_id, path, fd)
    lock.describe(doing)
    return lock


def _still_named(fd: int, path: Path) -> bool:
    """Whether `path` is still the file open as `fd` (a releasing holder unlinks it)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


@asynccontextmanager
async def thread_lock(home: Path, thread_id: str, doing: str) -> AsyncIterator[ThreadLock | None]:
    """`async with thread_lock(home, thread_id, doing="undo"):` the thread is this process's meanwhile."""
    lock = acquire(home, thread_id, doing)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()


async def taken_off_loop(take: Callable[[], Lock]) -> Lock:
    """`take()` run in a worker thread; a lock it takes after the caller was cancelled is released."""
    task = asyncio.ensure_future(asyncio.to_thread(take))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_release_late)
        raise


def _release_late(done: asyncio.Future) -> None:
    if not done.cancelled() and done.exception() is None and done.result() is not None:
        done.result().release()


@dataclass
class ThreadLocks:
    """A Session's locks: its current thread's, held while it works on that thread (the chat's whole stay,
    a headless run), and another thread's for one operation (`ml-intern undo THREAD`). A chat keeps its
    thread even between turns, as an editor keeps its swap file: its screen is that thread, and a turn or an
    undo from another terminal would make it stale; the refused process is told which chat has it."""

    home: Path | None  # where the lock files are (ML_INTERN_HOME); None: none (a session without a database)
    locker: Callable[[str, str], HeldLock] | None = None  # (thread_id, doing) -> lock: instead of lock files
    current: HeldLock | None = None
    idle: str = "idle"  # what the holder says between operations
    watch_s: float = WATCH_S  # how often a watched operation checks its lock is still held

    def lock(self, thread_id: str, doing: str) -> HeldLock | None:
        """`thread_id` locked for this process (None: no locking here); ThreadBusy if it is taken."""
        if self.locker is not None:
            return self.locker(thread_id, doing)
        return acquire(self.home, thread_id, doing) if self.home is not None else None

    def take(self, thread_id: str) -> None:
        """Make `thread_id` the current thread (the previous one is let go); ThreadBusy if it is taken."""
        if self.current is not None and self.current.thread_id == thread_id and self.current.held:
            return
        lock = self.lock(thread_id, self.idle)
        self.release()
        self.current = lock

    def release(self) -> None:
        if self.current is not None:
            self.current.release()
            self.current = None

    @asynccontextmanager
    async def writing(self, thread_id: str, doing: str, watch: bool = False) -> AsyncIterator[None]:
        """`thread_id` is this process's for `doing`: the current lock, or one taken for the while. `watch`:
        the lock is checked every `watch_s` meanwhile, and the block stopped with LockLost once it is gone."""
        current = self.current
        if current is not None and current.thread_id == thread_id:
            await asyncio.to_thread(current.describe, doing)  # a lost database lock is taken again here
            try:
                async with watching(current if watch else None, self.watch_s):
                    yield
            finally:
                if current.held:
                    with contextlib.suppress(UserError):  # the next operation's describe says what is wrong
                        await asyncio.to_thread(current.describe, self.idle)
            return
        lock = await taken_off_loop(lambda: self.lock(thread_id, doing))
        try:
            async with watching(lock if watch else None, self.watch_s):
                yield
        finally:
            if lock is not None:
                await asyncio.to_thread(lock.release)
