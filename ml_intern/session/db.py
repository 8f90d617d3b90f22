"""The one interface our own SQL goes through, on SQLite (aiosqlite) or Postgres (psycopg): the subset of
aiosqlite's connection our code uses. SQL is written with `?` placeholders; rows are tuples."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

Dialect = Literal["sqlite", "postgres"]
LITERAL = re.compile(r"('(?:[^']|'')*')")  # a quoted SQL string: its `?` is text, not a placeholder


@functools.lru_cache(maxsize=1024)
def pyformat(sql: str) -> str:
    """`sql` with `?` placeholders as psycopg's `%s` (and a literal `%` as `%%`), once per statement."""
    parts = LITERAL.split(sql.replace("%", "%%"))
    return "".join(part if n % 2 else part.replace("?", "%s") for n, part in enumerate(parts))


class Query:
    """One statement: awaited, its cursor; as an `async with`, its cursor, closed at the end."""

    def __init__(self, db: Database, sql: str, params: Sequence[Any]) -> None:
        self.db, self.sql, self.params = db, sql, params
        self.cursor: Any = None

    def __await__(self) -> Any:
        return self.db._execute(self.sql, self.params).__await__()

    async def __aenter__(self) -> Any:
        self.cursor = await self.db._execute(self.sql, self.params)
        return self.cursor

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cursor.close()


class Database:
    """A connection to our tables. On Postgres it is in autocommit mode (`commit` does nothing) and
    `transaction()` groups the migrations' statements."""

    def __init__(self, conn: Any, dialect: Dialect, where: str) -> None:
        self.conn = conn  # an aiosqlite.Connection (shared with the saver) or a psycopg.AsyncConnection
        self.dialect: Dialect = dialect
        self.where = where  # a path, or the URL without its password: named in messages

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Query:
        return Query(self, sql, tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(row) for row in rows]
        if self.dialect == "sqlite":
            await self.conn.executemany(sql, rows)
        elif rows:
            async with self.conn.cursor() as cursor:
                await cursor.executemany(pyformat(sql), rows)

    async def commit(self) -> None:
        if self.dialect == "sqlite":
            await self.conn.commit()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """Statements that take effect together (SQLite: BEGIN IMMEDIATE, so writers queue at the start).
        For the migrations, which run before the connection is shared: another task's statement meanwhile
        would join the transaction, and a `commit()` inside it would end it early."""
        if self.dialect == "postgres":
            async with self.conn.transaction():
                yield self
            return
        if self.conn.in_transaction:  # Python's sqlite3 opened one before a write: end it
            await self.conn.commit()
        await self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            await self.conn.rollback()
            raise
        await self.conn.commit()

    async def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        if self.dialect == "sqlite":
            return await self.conn.execute(sql, params)
        return await self.conn.execute(pyformat(sql), params)
