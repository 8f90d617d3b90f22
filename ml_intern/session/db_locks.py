"""One writer per thread on a shared Postgres: a session-level advisory lock per thread, across machines.

Each lock lives on its own connection, opened for it and closed at release: the server drops a session's
advisory locks when its connection ends, so a crashed process (even `kill -9`, or a machine gone silent,
after the TCP keepalives below) never leaves a stale lock. The holder's row in `ml_intern_locks` gives the
busy line ("pid N on HOST is running a turn"); a row whose lock is free is stale and simply overwritten.
`make_locks(target)` gives the Session the locks of its database target (a Postgres URL, or a SQLite path)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_intern.errors import EXIT_FAILURE, EXIT_USAGE
from ml_intern.paths import connect_options, shown_target
from ml_intern.session.checkpointer import StorageError
from ml_intern.session.locks import ThreadBusy, ThreadLocks, busy_line, taken_off_loop
from ml_intern.session.storage import MIGRATE, reason, unreachable

# The server notices a vanished client (a machine off the network) after about a minute, not two hours.
KEEPALIVES = {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}

if TYPE_CHECKING:
    from psycopg import Connection


def lock_key(thread_id: str) -> int:
    """The advisory lock key of a thread: 64 bits of a hash (a false "busy" from a collision: never, in
    practice), prefixed so that it shares no key with other users of the database."""
    digest = hashlib.blake2b(b"ml-intern thread " + thread_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _connect(url: str) -> Connection[Any]:
    """A new autocommit connection for one lock (tuple rows); StorageError if the database is unreachable."""
    import psycopg  # here: SQLite users never pay for its import

    try:
        conn = psycopg.connect(url, autocommit=True, **connect_options(url))
    except psycopg.Error as exc:  # a wrong or unreachable URL: configuration, as when storage opens it
        raise unreachable(exc, url) from None
    with contextlib.suppress(psycopg.Error):  # server settings a restricted role or a pooler may refuse
        conn.execute("SET application_name = 'ml-intern thread lock'")
        for name, value in KEEPALIVES.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    return conn


def _holder(conn: Connection[Any], thread_id: str) -> dict:
    """The holder's row as busy_line wants it ({} while the holder has not written it yet)."""
    row = conn.execute(
        "SELECT pid, host, doing, CAST(extract(epoch FROM since) AS DOUBLE PRECISION) FROM ml_intern_locks"
        " WHERE thread_id = %s",
        (thread_id,),
    ).fetchone()
    return dict(zip(("pid", "host", "doing", "since"), row, strict=True)) if row else {}


def _lock(url: str, thread_id: str, doing: str) -> Connection[Any]:
    """A connection holding `thread_id`'s advisory lock, its holder row written; ThreadBusy if taken."""
    import psycopg

    conn = _connect(url)
    try:
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(thread_id),)).fetchone()[0]:
            raise ThreadBusy(busy_line(thread_id, _holder(conn, thread_id)))
        conn.execute(
            "INSERT INTO ml_intern_locks (thread_id, pid, host, doing, since) VALUES (%s, %s, %s, %s, now())"
            " ON CONFLICT (thread_id) DO UPDATE SET pid = EXCLUDED.pid, host = EXCLUDED.host,"
            " doing = EXCLUDED.doing, since = EXCLUDED.since",
            (thread_id, os.getpid(), socket.gethostname(), doing),
        )
    except psycopg.errors.UndefinedTable:  # ml_intern_locks is made by the migrations
        conn.close()
        raise StorageError(f"{shown_target(url)} has no ml-intern tables yet: run `{MIGRATE}`") from None
    except psycopg.OperationalError as exc:  # the connection failed: exit 2, as when storage opens it
        conn.close()
        raise unreachable(exc, url) from None
    except psycopg.Error as exc:  # a missing privilege is configuration (exit 2), as at open
        conn.close()
        code = EXIT_USAGE if isinstance(exc, psycopg.errors.InsufficientPrivilege) else EXIT_FAILURE
        line = f"cannot lock thread {thread_id} in {shown_target(url)}: {reason(exc, url)}"
        raise StorageError(line, code) from None
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass
class DatabaseThreadLock:
    """A held lock on one thread: its connection (holding the advisory lock) and the holder row."""

    url: str
    thread_id: str
    conn: Connection[Any] | None

    @property
    def held(self) -> bool:
        return self.conn is not None

    def describe(self, doing: str) -> None:
        """Say what this process is doing with the thread. A lost connection lost the lock with it: the lock
        is taken again (ThreadBusy when another process took the thread meanwhile)."""
        import psycopg

        if self.conn is None:
            return
        try:
            self.conn.execute(
                "UPDATE ml_intern_locks SET doing = %s, since = now() WHERE thread_id = %s",
                (doing, self.thread_id),
            )
            return
        except psycopg.OperationalError:
            if not self.conn.closed and not self.conn.broken:
                raise
        self.conn.close()
        self.conn = None
        self.conn = _lock(self.url, self.thread_id, doing)

    def release(self) -> None:
        """Delete the holder row and unlock (a closing connection's backend drops its locks a moment after
        close() returns: too late for a next locker in the same breath), then close the connection."""
        import psycopg

        if self.conn is None:
            return
        with contextlib.suppress(psycopg.Error):  # failing: the connection is lost, and the lock with it
            self.conn.execute("DELETE FROM ml_intern_locks WHERE thread_id = %s", (self.thread_id,))
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(self.thread_id),))
        self.conn.close()
        self.conn = None


def acquire(url: str, thread_id: str, doing: str) -> DatabaseThreadLock:
    """Lock `thread_id` for this process on the database at `url`, without waiting; ThreadBusy when another
    process (on any machine) holds it; StorageError when the database is out of reach."""
    return DatabaseThreadLock(url, thread_id, _lock(url, thread_id, doing))


@asynccontextmanager
async def thread_lock(url: str, thread_id: str, doing: str) -> AsyncIterator[DatabaseThreadLock]:
    """`async with thread_lock(url, thread_id, doing="undo"):` the thread is this process's meanwhile."""
    lock = await taken_off_loop(lambda: acquire(url, thread_id, doing))
    try:
        yield lock
    finally:
        await asyncio.to_thread(lock.release)


def make_locks(target: Path | str | None, home: Path | None) -> ThreadLocks:
    """The thread locks of a database target: advisory locks for a Postgres URL (whatever the home), lock
    files under `home` for a SQLite file, none without a database."""
    if isinstance(target, str):
        return ThreadLocks(None, locker=lambda thread_id, doing: acquire(target, thread_id, doing))
    return ThreadLocks(home if target is not None else None)
