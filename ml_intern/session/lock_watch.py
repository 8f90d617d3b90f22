"""A watched lock: while an operation runs, its database lock is checked every few seconds, and the operation
is stopped once the lock is gone (its connection dropped: another process may have the thread by now)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ml_intern.errors import EXIT_FAILURE, UserError

WATCH_S = 2.0  # a lost database lock stops a turn within about this long


class LockLost(UserError):
    """The lock's database connection dropped mid-operation: another process may have the thread now."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"lost the lock on thread {thread_id} (database connection dropped): resume it", EXIT_FAILURE
        )


def still_held(lock: Any) -> bool:
    """Whether `lock` is still this process's: a database lock's connection still answers (the server
    session holding the advisory lock is alive); a lock file's descriptor is open."""
    conn = getattr(lock, "conn", None)
    if conn is None:
        return lock.held
    try:
        conn.execute("SELECT 1")
    except Exception:  # any failure: the lock cannot be vouched for
        return False
    return True


@asynccontextmanager
async def watching(lock: Any | None, every_s: float) -> AsyncIterator[None]:
    """Check `lock` every `every_s` while the block runs (off the loop); once it is lost the block is
    cancelled and LockLost raised. Nothing to watch for None or a lock file (the kernel keeps those)."""
    if lock is None or getattr(lock, "conn", None) is None:
        yield
        return
    task, lost = asyncio.current_task(), asyncio.Event()
    assert task is not None

    async def watch() -> None:
        while True:
            await asyncio.sleep(every_s)
            if not await asyncio.to_thread(still_held, lock):
                lost.set()
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    except asyncio.CancelledError:
        if not lost.is_set():
            raise
        task.uncancel()
        raise LockLost(lock.thread_id) from None
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if lost.is_set():  # the block swallowed the cancellation: it still must not go on as if locked
        task.uncancel()
        raise LockLost(lock.thread_id)
