"""Our own tables (threads, the undo journal) and their numbered migrations, recorded in
`ml_intern_migrations`. Every process migrates at open, under a lock (SQLite: BEGIN IMMEDIATE; Postgres: a
polled advisory lock), so several machines starting at once on a fresh database all succeed. The SQL is
written once: `REAL` and `BIGINT` are the only words the dialects spell differently (`for_dialect`).
On Postgres they run after LangGraph's saver has set up its tables: a migration may set their storage."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from ml_intern.session.checkpointer import StorageError
from ml_intern.session.db import Database, Dialect

MIGRATION_LOCK = 0x6D6C_696E_7465_726E  # advisory lock keys (bigint): our migrations ("mlintern")
SAVER_SETUP_LOCK = 0x6D6C_696E_7465_7273  # LangGraph's saver setup()
POLL_S = 0.05  # a blocking pg_advisory_lock deadlocks with the saver's CREATE INDEX CONCURRENTLY
LOCK_WAIT_S = 300.0

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"REAL": "REAL", "BIGINT": "INTEGER"},
    "postgres": {"REAL": "DOUBLE PRECISION", "BIGINT": "BIGINT"},  # Postgres' REAL is 4 bytes: times
}
TYPE_WORD = re.compile(r"\b(REAL|BIGINT)\b")

VERSIONS = (
    "CREATE TABLE IF NOT EXISTS ml_intern_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
)

FIRST_SCHEMA = (  # version 1: the tables as they were before migrations were numbered
    """CREATE TABLE IF NOT EXISTS ml_intern_threads (
        thread_id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        workdir TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        turns INTEGER NOT NULL DEFAULT 0,
        stop_reason TEXT,
        input_tokens BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost_usd REAL,
        cached_tokens BIGINT NOT NULL DEFAULT 0,
        usage_json TEXT NOT NULL DEFAULT '{}',
        tool_runtime TEXT NOT NULL DEFAULT 'local')""",
    # Written by versions before the call journal (whole-turn manifests); read, never written.
    """CREATE TABLE IF NOT EXISTS ml_intern_snapshots (
        thread_id TEXT NOT NULL, base_checkpoint TEXT NOT NULL, workdir TEXT NOT NULL,
        started_at REAL NOT NULL, start_manifest TEXT, end_manifest TEXT,
        PRIMARY KEY (thread_id, base_checkpoint))""",
    """CREATE TABLE IF NOT EXISTS ml_intern_undo_turns (
        thread_id TEXT NOT NULL,
        base_checkpoint TEXT NOT NULL,  -- the head checkpoint the turn started from ('' for a new thread)
        workdir TEXT NOT NULL,
        started_at REAL NOT NULL,
        PRIMARY KEY (thread_id, base_checkpoint))""",
    """CREATE TABLE IF NOT EXISTS ml_intern_scan_cache (
        workdir TEXT PRIMARY KEY,
        manifest TEXT NOT NULL,  -- blob hash of the workdir's latest scan (its hashes are reused)
        taken_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ml_intern_undo_calls (
        thread_id TEXT NOT NULL,
        base_checkpoint TEXT NOT NULL,  -- the user turn's row in ml_intern_undo_turns
        seq INTEGER NOT NULL,  -- order of the batch within the turn
        call_ids TEXT NOT NULL,  -- the tool calls of the batch, space-separated
        workdir TEXT NOT NULL,
        started_at REAL NOT NULL,  -- when the scan before the calls began
        ended_at REAL,  -- when the scan after them ended (NULL: the process stopped in between)
        changes TEXT,  -- JSON [[path, before, after], ...] (NULL: not recorded)
        blobs TEXT NOT NULL DEFAULT '',  -- store blobs of the before-states, space-separated
        PRIMARY KEY (thread_id, base_checkpoint, seq))""",
    "CREATE INDEX IF NOT EXISTS ml_intern_undo_calls_window ON ml_intern_undo_calls (workdir, started_at)",
)
# Thread columns added before migrations were numbered: a database of that time may lack them.
LATE_THREAD_COLUMNS = {
    "cached_tokens": "BIGINT NOT NULL DEFAULT 0",
    "usage_json": "TEXT NOT NULL DEFAULT '{}'",
    "tool_runtime": "TEXT NOT NULL DEFAULT 'local'",
}
HOSTS = (  # version 2: which machine last ran a thread's turn; whose workdir (and blobs) a turn's undo holds
    "ALTER TABLE ml_intern_threads ADD COLUMN host TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE ml_intern_undo_turns ADD COLUMN host TEXT NOT NULL DEFAULT ''",
)
# Version 3, Postgres only: the saver's byte blobs (zlib'd by CompressingSerializer when large, so Postgres'
# own compression cannot shrink them) stay in the row up to a page, not moved to TOAST, where a 2 KB tool
# result took two chunks and their index entries. Existing rows keep their layout; values read the same.
SAVER_STORAGE = (
    "ALTER TABLE checkpoint_writes ALTER COLUMN blob SET STORAGE MAIN",
    "ALTER TABLE checkpoint_blobs ALTER COLUMN blob SET STORAGE MAIN",
)

# Version 4: the home (home_id.py) and, per call, the machine that recorded undo rows.
HOME_IDS = (
    "ALTER TABLE ml_intern_undo_turns ADD COLUMN home_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE ml_intern_undo_calls ADD COLUMN host TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE ml_intern_undo_calls ADD COLUMN home_id TEXT NOT NULL DEFAULT ''",
)
# Version 5, Postgres only: the holder of each thread's advisory lock (db_locks.py), for the "busy: pid N on
# HOST is …" line. SQLite keeps its lock files in ML_INTERN_HOME.
LOCKS = (
    """CREATE TABLE IF NOT EXISTS ml_intern_locks (
        thread_id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, doing TEXT NOT NULL,
        since TIMESTAMPTZ NOT NULL DEFAULT now())""",
)


def for_dialect(sql: str, dialect: Dialect) -> str:
    """`sql` with the column types the dialect spells differently spelled its way."""
    return TYPE_WORD.sub(lambda match: TYPES[dialect][match.group(1)], sql)


async def run_all(db: Database, statements: tuple[str, ...]) -> None:
    for statement in statements:
        await db.execute(for_dialect(statement, db.dialect))


async def first_schema(db: Database) -> None:
    """Create the tables, or adopt an existing database: add the thread columns it lacks."""
    await run_all(db, FIRST_SCHEMA)
    present = await columns(db, "ml_intern_threads")
    for name, definition in LATE_THREAD_COLUMNS.items():
        if name not in present:
            await run_all(db, (f"ALTER TABLE ml_intern_threads ADD COLUMN {name} {definition}",))


def statements(sql: tuple[str, ...], only: Dialect | None = None) -> Callable[[Database], Awaitable[None]]:
    """The migration that runs `sql` (on the `only` dialect when given: a no-op on the other)."""

    async def apply(db: Database) -> None:
        if only in (None, db.dialect):
            await run_all(db, sql)

    return apply


MIGRATIONS: tuple[Callable[[Database], Awaitable[None]], ...] = (  # version = index + 1
    first_schema,
    statements(HOSTS),
    statements(SAVER_STORAGE, "postgres"),  # SQLite has no per-column storage
    statements(HOME_IDS),
    statements(LOCKS, "postgres"),  # SQLite keeps its lock files in ML_INTERN_HOME
)
LATEST = len(MIGRATIONS)


async def migrate(db: Database) -> list[int]:
    """Apply the migrations the database lacks (under the migration lock); the versions applied."""
    if await version(db) >= LATEST:
        return []
    async with exclusive(db, MIGRATION_LOCK), db.transaction():
        await run_all(db, (VERSIONS,))
        current = await version(db)
        for number in range(current + 1, LATEST + 1):
            await MIGRATIONS[number - 1](db)
            await db.execute(
                "INSERT INTO ml_intern_migrations (version, applied_at) VALUES (?, ?)", (number, time.time())
            )
        return list(range(current + 1, LATEST + 1))


async def version(db: Database) -> int:
    """The newest migration applied (0: none; a database from before numbered migrations)."""
    if not await has_table(db, "ml_intern_migrations"):
        return 0
    async with db.execute("SELECT MAX(version) FROM ml_intern_migrations") as cursor:
        row = await cursor.fetchone()
    return row[0] or 0


async def has_table(db: Database, name: str) -> bool:
    if db.dialect == "sqlite":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        query = "SELECT 1 WHERE to_regclass(?) IS NOT NULL"
    async with db.execute(query, (name,)) as cursor:
        return await cursor.fetchone() is not None


async def columns(db: Database, table: str) -> list[str]:
    """The columns `table` has in `db`, in their order (none: no such table)."""
    if db.dialect == "sqlite":
        query = "SELECT name FROM pragma_table_info(?)"
    else:
        query = (
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position"
        )
    async with db.execute(query, (table,)) as cursor:
        return [row[0] for row in await cursor.fetchall()]


@asynccontextmanager
async def exclusive(db: Database, key: int) -> AsyncIterator[None]:
    """On Postgres, hold advisory lock `key` (polled: waiting sessions must hold no snapshot); on SQLite
    nothing: the caller's BEGIN IMMEDIATE transaction is the lock."""
    if db.dialect == "sqlite":
        yield
        return
    deadline = time.monotonic() + LOCK_WAIT_S
    while not await try_lock(db, key):
        if time.monotonic() > deadline:
            raise StorageError(
                f"waited {LOCK_WAIT_S:.0f} s for another ml-intern to finish setting up {db.where}; try again"
            )
        await asyncio.sleep(POLL_S)
    import psycopg

    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):  # a lost connection has dropped the lock already
            await db.execute("SELECT pg_advisory_unlock(CAST(? AS BIGINT))", (key,))


async def try_lock(db: Database, key: int) -> bool:
    async with db.execute("SELECT pg_try_advisory_lock(CAST(? AS BIGINT))", (key,)) as cursor:
        return bool((await cursor.fetchone())[0])
