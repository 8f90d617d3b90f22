"""`ml-intern db migrate` and `ml-intern db copy` on a real Postgres: threads of a SQLite home copied into it
work there as they did at home (transcript, thread row, undo), a copy never mixes two histories, and no
password is printed."""

from __future__ import annotations

import asyncio
import os
import socket
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
    assert "postgres:***@" in seen.out


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
