"""What `ml-intern db migrate` and `ml-intern db copy` print: a line per step, one line for a failure."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from ml_intern.errors import EXIT_OK, UserError
from ml_intern.paths import (
    POSTGRES_SCHEMES,
    URL_VARIABLE,
    checked_url,
    database_path,
    database_target,
    shown_target,
)

FROM_HOME = "sqlite"  # `--from sqlite`: this ML_INTERN_HOME's file
TABLES = ("checkpoints", "ml_intern_threads")  # an ml-intern database has one or both


def run_job(verbose: bool, job: Callable[[], Awaitable[None]]) -> int:
    """Prepare the process (.env, logs), run `job`; failures become one line and an exit code."""
    from ml_intern.session.start import prepare_process
    from ml_intern.terminal.cli_session import one_line_failures

    def run() -> int:
        prepare_process(os.environ, verbose)
        asyncio.run(job())
        return EXIT_OK

    return one_line_failures(run)


def migrate_main(verbose: bool) -> int:
    return run_job(verbose, lambda: migrate(database_target(os.environ)))


async def migrate(target: Path | str) -> None:
    """Open the target: LangGraph's tables and ours are created or brought up to date, under a lock that
    makes concurrent runs (several machines at once) take turns."""
    from ml_intern.session.migrations import LATEST, version
    from ml_intern.session.storage import open_storage, saver_version

    print(f"database: {shown_target(target)}", flush=True)
    async with open_storage(target) as storage:
        print(f"  ml-intern tables: migration {await version(storage.db)} of {LATEST}", flush=True)
        if storage.dialect == "postgres":
            latest = len(storage.saver.MIGRATIONS) - 1
            print(f"  LangGraph checkpoint tables: migration {await saver_version(storage.db)} of {latest}")
        else:
            print("  LangGraph checkpoint tables: set up")
    print("ready")


def copy_main(source: str, target: str | None, skip_existing: bool, verbose: bool) -> int:
    """`--to` defaults to ML_INTERN_DATABASE_URL (or the config's database_url): no password on the command
    line, where the shell's history and `ps` would show it."""

    async def job() -> None:
        # the target first: a wrong --to is said before --from is looked at (files read off the event loop)
        url = await asyncio.to_thread(target_url, target)
        await copy(await asyncio.to_thread(source_target, source), url, skip_existing)

    return run_job(verbose, job)


def copied_one(thread_id: str) -> None:
    print(f"  {thread_id}", flush=True)


def source_target(value: str) -> Path | str:
    """`--from`: "sqlite" (this home's file), a Postgres URL, or a SQLite file that exists."""
    if value == FROM_HOME:
        path = database_path(os.environ)
    elif value.split(":", 1)[0] in POSTGRES_SCHEMES:
        return checked_url(value, "--from")
    else:
        path = Path(value).expanduser()
    if not path.is_file():
        raise UserError(f"--from {value}: no database at {path} (nothing to copy)")
    if not is_ml_intern_file(path):
        raise UserError(f"{path} is not an ml-intern database: nothing to copy")
    return path


def is_ml_intern_file(path: Path) -> bool:
    """Whether `path` is a SQLite file with ml-intern's tables (read only: opening it for the copy would set
    up the tables in any other file)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)", TABLES
            ).fetchone()
    except sqlite3.Error:  # not a SQLite file at all (or damaged)
        return False
    return found[0] > 0


def target_url(value: str | None) -> str:
    """`--to`: a postgresql:// URL; without it, the database ML_INTERN_DATABASE_URL (or the config) names."""
    if not value:
        target = database_target(os.environ)
        if isinstance(target, Path):
            raise UserError(f"--to: give the database to copy into, or set {URL_VARIABLE} to its URL")
        return target
    if value.split(":", 1)[0] not in POSTGRES_SCHEMES:
        raise UserError(f"--to takes a postgresql://… URL (the shared database), not '{shown_target(value)}'")
    return checked_url(value, "--to")


async def copy(source: Path | str, target: str, skip_existing: bool) -> None:
    """Every thread of `source` into `target`, with counts."""
    from ml_intern.session.db_copy import copy_threads
    from ml_intern.session.storage import open_storage

    if shown_target(source) == shown_target(target):
        raise UserError("--from and --to name the same database: nothing to copy")
    print(f"copying threads from {shown_target(source)} to {shown_target(target)}", flush=True)
    async with open_storage(source) as origin, open_storage(target) as destination:
        done = await copy_threads(origin, destination, skip_existing, socket.gethostname(), copied_one)
    print(
        f"copied {len(done.threads)} threads ({done.checkpoints} checkpoints, {done.writes} pending writes,"
        f" {done.rows} rows of thread and undo records)"
    )
    if done.restarted:
        again = ", ".join(done.restarted)
        print(f"copied again {len(done.restarted)} threads a stopped copy had left in part: {again}")
    if done.skipped:
        print(f"skipped {len(done.skipped)} threads the target has already: {', '.join(done.skipped)}")
    if isinstance(source, Path):
        blobs = source.parent / "snapshots"
        print(
            f"undo's file copies stay in {blobs}: undo on this machine restores files as before; on another"
            " machine it lists them as changed here"
        )
