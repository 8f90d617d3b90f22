"""Where threads live: the SQLite file in ML_INTERN_HOME, or a Postgres database several machines share.
`open_storage` opens the LangGraph saver (compact versions, compressed blobs) and our tables (migrated)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_intern.paths import (
    POSTGRES_SCHEMES,
    connect_options,
    driver_line,
    home_dir,
    register_password,
    shown_target,
)
from ml_intern.session.checkpointer import (
    CompressingSerializer,
    StorageError,
    compact_saver_class,
    open_checkpointer,
    when_unlocked,
)
from ml_intern.session.db import Database, Dialect
from ml_intern.session.migrations import SAVER_SETUP_LOCK, exclusive, has_table, migrate

MIGRATE = "ml-intern db migrate"
AT_CHARACTER = re.compile(r" at character \d+$")  # the position in the statement Postgres appends
SOURCE = "ML_INTERN_DATABASE_URL (or the config's database_url)"


@dataclass
class Storage:
    """An open database: the saver, our tables, and where it is."""

    saver: Any  # the LangGraph checkpointer (AsyncSqliteSaver or AsyncPostgresSaver)
    db: Database  # our own tables (threads, undo journal); its `where` and `dialect` are the storage's
    home: Path  # ML_INTERN_HOME for this machine's files: snapshot blobs, logs, SQLite's lock files
    target: Path | str  # as opened; a URL keeps its password (to open more connections): never shown

    @property
    def where(self) -> str:
        return self.db.where

    @property
    def dialect(self) -> Dialect:
        return self.db.dialect

    @property
    def file(self) -> Path | None:
        """The SQLite file (None on Postgres)."""
        return self.target if isinstance(self.target, Path) else None


def is_url(target: Path | str) -> bool:
    return isinstance(target, str) and target.split(":", 1)[0] in POSTGRES_SCHEMES


@asynccontextmanager
async def open_storage(target: Path | str, home: Path | None = None) -> AsyncIterator[Storage]:
    """Open `target` (a SQLite path or a postgresql:// URL), migrated and set up; StorageError (one line)
    when it cannot be. `home` defaults to the SQLite file's folder, or ML_INTERN_HOME for Postgres."""
    if is_url(target):
        async with open_postgres(str(target), home or home_dir(os.environ)) as storage:
            yield storage
        return
    path = Path(target)
    async with open_checkpointer(path) as saver:
        db = Database(saver.conn, "sqlite", str(path))
        await when_unlocked(lambda: migrate(db))
        yield Storage(saver, db, home or path.parent, path)


@asynccontextmanager
async def open_postgres(url: str, home: Path) -> AsyncIterator[Storage]:
    """Two connections (the saver's, with dict rows; ours, with tuple rows), both autocommit."""
    import psycopg
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row

    register_password(url)
    where = shown_target(url)
    extra = connect_options(url)
    async with AsyncExitStack() as stack:
        try:
            saver_conn = await psycopg.AsyncConnection.connect(
                url, autocommit=True, prepare_threshold=0, row_factory=dict_row, **extra
            )
            stack.push_async_callback(saver_conn.close)
            conn = await psycopg.AsyncConnection.connect(
                url, autocommit=True, prepare_threshold=None, **extra
            )
            stack.push_async_callback(conn.close)
        except psycopg.Error as exc:
            raise unreachable(exc, url) from None
        db = Database(conn, "postgres", where)
        try:
            saver = compact_saver_class(AsyncPostgresSaver)(saver_conn, serde=CompressingSerializer())
            await set_up_saver(saver, db)
            await migrate(db)  # after the saver's tables exist: a migration sets their storage
            yield Storage(saver, db, home, url)
        except psycopg.Error as exc:
            raise StorageError(f"database error in {where}: {reason(exc, url)}") from None


async def set_up_saver(saver: Any, db: Database) -> None:
    """The saver's own migrations, under their lock (its setup() is not safe run twice at once)."""
    if await saver_version(db) >= len(saver.MIGRATIONS) - 1:
        return
    async with exclusive(db, SAVER_SETUP_LOCK):
        await saver.setup()


async def saver_version(db: Database) -> int:
    """The newest of the saver's migrations applied (-1: none)."""
    if not await has_table(db, "checkpoint_migrations"):
        return -1
    async with db.execute("SELECT MAX(v) FROM checkpoint_migrations") as cursor:
        row = await cursor.fetchone()
    return -1 if row[0] is None else row[0]


def reason(exc: Exception, url: str) -> str:
    """The driver's first line about `exc`, without the URL's password; with what to do when the role lacks
    a privilege (a shared database's owner sets its tables up once)."""
    import psycopg

    line = driver_line(exc, url)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        line = AT_CHARACTER.sub("", line)  # where in our SQL: nothing the user can act on
        line += (
            "; this role may not create or change ml-intern's tables: ask the database's owner to run"
            f" `{MIGRATE}` (or to grant this role CREATE on the schema)"
        )
    return line


def unreachable(exc: Exception, url: str) -> StorageError:
    """The one line (exit 2: configuration) for a database that refused or failed a connection."""
    return StorageError(f"cannot reach the database {shown_target(url)}: {reason(exc, url)}; check {SOURCE}")
