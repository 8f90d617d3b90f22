"""`ml-intern db migrate` and `ml-intern db copy` on a real Postgres: threads of a SQLite home copied into it
work there as they did at home (transcript, thread row, undo), a copy never mixes two histories, and no
password is printed."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from ml_intern.cli import app
from ml_intern.paths import database_path
from ml_intern.session.export import export_thread
from ml_intern.session.migrations import LATEST
from ml_intern.session.session import open_session
from tests.fakes import llm_server as script
from tests.harness import Sandbox
from tests.harness_cli import seed_thread

NOTES = "first draft\n"


def ml_intern(*args: str) -> int:
    """`ml-intern ARGS` in this process: its exit code (the output goes to capsys)."""
    return app(args=list(args), standalone_mode=False) or 0


def seed_home(sandbox: Sandbox) -> str:
    """A thread in the home's SQLite file whose one turn wrote notes.txt; its id."""
    answers = [script.tool_call("write", {"path": "notes.txt", "content": NOTES}, id="w1"), "Wrote it."]
    asyncio.run(seed_thread("c0c0a0000001", "write the notes", answers))
    assert (sandbox.workdir / "notes.txt").read_text() == NOTES
    return "c0c0a0000001"


async def transcript(target: Path | str, thread_id: str) -> list[tuple[str, str]]:
    async with open_session(target) as session:
        return [(m.type, str(m.content)) for m in await session.messages(thread_id)]


async def exported(target: Path | str, thread_id: str) -> str:
    async with open_session(target) as session:
        return await export_thread(session, thread_id, "json", environ=session.environ)


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def test_copy_brings_a_thread_to_postgres_where_it_reads_and_undoes_as_at_home(
    sandbox: Sandbox, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    thread_id = seed_home(sandbox)
    home = database_path(os.environ)
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url) == 0
    out = capsys.readouterr().out
    assert f"  {thread_id}" in out.splitlines()
    assert "copied 1 threads (" in out and "stay in" in out
    assert asyncio.run(transcript(postgres_url, thread_id)) == asyncio.run(transcript(home, thread_id))
    assert asyncio.run(exported(postgres_url, thread_id)) == asyncio.run(exported(home, thread_id))
    [(title, turns, host)] = query(postgres_url, "SELECT title, turns, host FROM ml_intern_threads")
    assert (title, turns, host) == ("write the notes", 1, socket.gethostname())
    turn_hosts = query(postgres_url, "SELECT host FROM ml_intern_undo_turns WHERE thread_id = %s", thread_id)
    assert turn_hosts == [(socket.gethostname(),)]

    async def undo() -> list[str]:
        async with open_session(postgres_url) as session:
            return (await session.undo(thread_id, 1)).lines()

    lines = asyncio.run(undo())
    assert any(line.startswith("  removed: notes.txt") for line in lines)  # as at home: the blobs are here
    assert not (sandbox.workdir / "notes.txt").exists()
    assert asyncio.run(transcript(postgres_url, thread_id)) == []
    assert asyncio.run(transcript(home, thread_id)) != []  # the source is left as it was


def test_copy_refuses_threads_the_target_has_unless_told_to_skip_them(
    sandbox: Sandbox, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    thread_id = seed_home(sandbox)
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url) == 0
    before = query(postgres_url, "SELECT count(*) FROM checkpoints")
    capsys.readouterr()
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of the 1 threads are in" in err and "--skip-existing" in err
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url, "--skip-existing") == 0
    out = capsys.readouterr().out
    assert "copied 0 threads" in out and f"skipped 1 threads the target has already: {thread_id}" in out
    assert query(postgres_url, "SELECT count(*) FROM checkpoints") == before


def test_copy_never_prints_the_password(
    sandbox: Sandbox, postgres_server: object, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_home(sandbox)
    url = postgres_server.create_database().replace("postgres@", "postgres:s3cr3t-pw@")  # trust: accepted
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", url) == 0
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", url.replace("127.0.0.1", "127.0.0.1:1")) != 0
    seen = capsys.readouterr()
    assert "s3cr3t-pw" not in seen.out + seen.err
    assert "postgres:[redacted]@" in seen.out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--from", "sqlite", "--to", "sqlite"), "--to takes a postgresql://… URL"),
        (("--from", "nowhere.sqlite", "--to", "postgresql://h/db"), "no database at nowhere.sqlite"),
        (("--from", "sqlite", "--to", "postgresql://h/db"), "no database at"),  # a home with no threads
    ],
)
def test_copy_says_in_one_line_what_is_wrong_with_its_arguments(
    args: tuple[str, ...], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ml_intern("db", "copy", *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err


@pytest.mark.parametrize("given", ["variable", "--to"])
@pytest.mark.parametrize("url", ["postgresql://u:pw-in-url@::1:5432/db", "postgresql://u:pw-in-url@[::1"])
def test_a_malformed_url_is_one_line_without_its_password(
    url: str,
    given: str,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if given == "variable":  # an IPv6 host without brackets, or a bracket left open
        monkeypatch.setenv("ML_INTERN_DATABASE_URL", url)
        assert ml_intern("threads") == 2
    else:
        assert ml_intern("db", "copy", "--from", "sqlite", "--to", url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a valid URL (" in err
    assert "pw-in-url" not in err and "internal error" not in err


def test_migrate_sets_up_a_fresh_database_once_even_from_several_processes_at_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml_intern.terminal.db import migrate

    async def four_at_once() -> None:
        await asyncio.gather(*(migrate(postgres_url) for _ in range(4)))

    asyncio.run(four_at_once())  # four connections each: the same race as four machines
    capsys.readouterr()
    monkeypatch.setenv("ML_INTERN_DATABASE_URL", postgres_url)
    assert ml_intern("db", "migrate") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"database: {postgres_url}"
    assert lines[1] == f"  ml-intern tables: migration {LATEST} of {LATEST}"
    assert lines[2].startswith("  LangGraph checkpoint tables: migration ") and lines[-1] == "ready"
    versions = query(postgres_url, "SELECT version FROM ml_intern_migrations ORDER BY version")
    assert versions == [(n,) for n in range(1, LATEST + 1)]


def newest_checkpoint(url: str, thread_id: str) -> str:
    [(newest,)] = query(url, "SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = %s", thread_id)
    return newest


def counts(url: str) -> list[tuple]:
    tables = (
        "checkpoints",
        "checkpoint_writes",
        "ml_intern_threads",
        "ml_intern_undo_turns",
        "ml_intern_undo_calls",
    )
    return [query(url, f"SELECT count(*) FROM {table}")[0] for table in tables]


@pytest.mark.parametrize("left_out", ["the newest checkpoint", "the thread row"])
def test_a_copy_stopped_midway_is_copied_again_by_the_next_one(
    left_out: str, sandbox: Sandbox, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    thread_id = seed_home(sandbox)
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url) == 0
    whole = counts(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # what a copy killed midway leaves
        if left_out == "the newest checkpoint":
            newest = newest_checkpoint(postgres_url, thread_id)
            conn.execute("DELETE FROM checkpoint_writes WHERE checkpoint_id = %s", (newest,))
            conn.execute("DELETE FROM checkpoints WHERE checkpoint_id = %s", (newest,))
        else:  # the checkpoints copied, not yet the rows
            conn.execute("DELETE FROM ml_intern_threads")
    assert counts(postgres_url) != whole
    capsys.readouterr()
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url, "--skip-existing") == 0
    out = capsys.readouterr().out
    assert f"copied again 1 threads a stopped copy had left in part: {thread_id}" in out
    assert "copied 1 threads (" in out and "skipped" not in out
    assert counts(postgres_url) == whole
    home = database_path(os.environ)
    assert asyncio.run(transcript(postgres_url, thread_id)) == asyncio.run(transcript(home, thread_id))


def test_a_thread_with_a_history_the_source_lacks_is_never_replaced(
    sandbox: Sandbox, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    thread_id = seed_home(sandbox)
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url) == 0
    newest = newest_checkpoint(postgres_url, thread_id)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the same id, another history
        conn.execute(
            "UPDATE checkpoints SET checkpoint_id = 'f' || checkpoint_id WHERE checkpoint_id = %s", (newest,)
        )
    before = counts(postgres_url)
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url) == 2  # refused: nothing written
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url, "--skip-existing") == 0
    assert f"skipped 1 threads the target has already: {thread_id}" in capsys.readouterr().out
    assert counts(postgres_url) == before and newest_checkpoint(postgres_url, thread_id) == f"f{newest}"


@pytest.mark.parametrize("content", ["text", "another program's sqlite"])
def test_copy_from_a_file_that_is_not_an_ml_intern_database_is_one_line_and_leaves_it(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "passwd"
    if content == "text":
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    else:
        with closing(sqlite3.connect(path)) as db, db:  # closed, not left to the GC
            db.execute("CREATE TABLE users (name TEXT)")
    before = path.read_bytes()
    assert ml_intern("db", "copy", "--from", str(path), "--to", "postgresql://h/db") == 2
    assert (
        capsys.readouterr().err == f"ml-intern: error: {path} is not an ml-intern database: nothing to copy\n"
    )
    assert path.read_bytes() == before


def test_copy_goes_to_the_database_the_variable_names_when_to_is_left_out(
    sandbox: Sandbox, postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml_intern.terminal.db import copy_main

    thread_id = seed_home(sandbox)
    assert copy_main("sqlite", None, skip_existing=False, verbose=False) == 2
    said = "--to: give the database to copy into, or set ML_INTERN_DATABASE_URL to its URL\n"
    assert capsys.readouterr().err.endswith(said)
    monkeypatch.setenv("ML_INTERN_DATABASE_URL", postgres_url)
    assert copy_main("sqlite", None, skip_existing=False, verbose=False) == 0
    assert f"to {postgres_url}" in capsys.readouterr().out
    assert query(postgres_url, "SELECT thread_id FROM ml_intern_threads") == [(thread_id,)]
