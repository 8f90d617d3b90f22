"""The checkpointer's serializer and version scheme (both backends), and the SQLite saver in ML_INTERN_HOME,
opened for one process (WAL, busy timeout)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ml_intern.errors import EXIT_FAILURE, UserError
from ml_intern.secrets import redact

BUSY_TIMEOUT_S = 30.0


class StorageError(UserError):
    """The database cannot be opened or written; the message says what to do."""


COMPRESS_OVER = 1024  # bytes: smaller blobs (counters, ids) are not worth compressing
INFLATED_MAX = 256 << 20  # bytes a compressed blob may inflate to: far above any state ml-intern writes


def stored_types() -> tuple[type, ...]:
    """The classes a checkpoint may rebuild when read: the transcript's messages (the rest of the state is
    plain data, and LangGraph's own types are on its built-in safe list). Anything else a row names (a
    planted `os.system`, say) comes back as its data, never called: anyone with the team database's URL can
    write rows that every machine reads."""
    from langchain_core.messages import (
        AIMessage,
        AIMessageChunk,
        HumanMessage,
        RemoveMessage,
        SystemMessage,
        ToolMessage,
    )

    return (AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage, RemoveMessage)


class CompressingSerializer:
    """LangGraph's serializer, strict about the types it rebuilds (`stored_types`), with large blobs (tool
    results, long replies) zlib-compressed on disk."""

    def __init__(self) -> None:
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

        # Explicit: LangGraph's default revives any callable a row names (LANGGRAPH_STRICT_MSGPACK unset).
        self.inner = JsonPlusSerializer(allowed_msgpack_modules=stored_types())

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if isinstance(obj, str):  # error texts LangGraph saves for failed steps: never a credential
            obj = redact(obj)
        kind, data = self.inner.dumps_typed(obj)
        if len(data) <= COMPRESS_OVER:
            return kind, data
        return f"{kind}+zlib", zlib.compress(data, 1)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, blob = data
        if kind.endswith("+zlib"):
            return self.inner.loads_typed((kind.removesuffix("+zlib"), inflate(blob)))
        return self.inner.loads_typed(data)


def inflate(blob: bytes) -> bytes:
    """A compressed blob's bytes, at most INFLATED_MAX: a row of a shared database may be a zlib bomb (a few
    KB that inflate to gigabytes) that no machine reading the thread should try to hold."""
    inflater = zlib.decompressobj()
    data = inflater.decompress(blob, INFLATED_MAX + 1)
    if len(data) > INFLATED_MAX or inflater.unconsumed_tail:
        raise StorageError(
            f"a checkpoint of this thread inflates to over {INFLATED_MAX >> 20} MB: not one ml-intern wrote"
            " (a damaged or planted row); it is left unread",
            EXIT_FAILURE,
        )
    return data


def compact_saver_class(base: type) -> type:
    """The saver (SQLite or Postgres) with integer channel versions.

    The stock saver writes each version as a 50-character string with a random suffix; a checkpoint
    stores ~20 of them, which made version strings most of the database for tool-heavy turns.
    """

    class CompactVersionSaver(base):
        def get_next_version(self, current: Any, channel: None) -> int:
            if isinstance(current, str):  # a thread written by the stock saver
                current = int(current.split(".")[0])
            return (current or 0) + 1

    return CompactVersionSaver


async def when_unlocked(setup: Any, attempts: int = 60) -> None:
    """Run `setup`, retrying while another process holds the database: switching to WAL mode does not
    wait on the busy timeout, so two processes starting at once can meet a lock."""
    for attempt in range(attempts):
        try:
            return await setup()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05 + random.random() * 0.1)


def corrupt_line(path: Path, exc: Exception) -> str:
    """What to do with a database file SQLite cannot read: keep it aside, start afresh."""
    return f"{path} is not a readable database ({exc}): move it aside (to {path.name}.damaged) and run again"


@asynccontextmanager
async def open_checkpointer(path: Path) -> AsyncIterator[Any]:
    """An AsyncSqliteSaver on `path`, with the database set up for several processes at once."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path), timeout=BUSY_TIMEOUT_S)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open {path}: {exc}; set ML_INTERN_HOME to a writable directory") from None
    try:
        await conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        await conn.execute("PRAGMA synchronous=NORMAL")
        saver = compact_saver_class(AsyncSqliteSaver)(conn, serde=CompressingSerializer())
        await when_unlocked(saver.setup)
        yield saver
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            what = f"{path} stayed locked by another ml-intern process for {BUSY_TIMEOUT_S:.0f} s; try again"
            raise StorageError(f"{what} once it has finished") from None
        raise StorageError(f"database error in {path}: {exc}; check disk space and permissions") from None
    except sqlite3.DatabaseError as exc:  # not OperationalError: the file's bytes are not a sound database
        raise StorageError(corrupt_line(path, exc), EXIT_FAILURE) from None
    finally:
        await conn.close()
