"""What a shared database's rows say reaches the terminal inert: anyone with the team URL can write a lock
holder's host, an undo call's host or a thread's machine, and an escape sequence in one (here: a window title
set, then text) is shown written out, never sent to the terminal."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from ml_intern.cli import app
from ml_intern.session.db_locks import acquire
from tests.fakes import llm_server as script
from tests.harness import Sandbox
from tests.harness_cli import seed_thread

THREAD = "e5c0000000f1"
PLANTED = "\x1b]0;pwn\x07evil"  # OSC 0: sets the terminal's title
SHOWN = "\\x1b]0;pwn\\x07evil"  # as inert() writes it out


def ml_intern(*args: str) -> int:
    return app(args=list(args), standalone_mode=False) or 0


def execute(url: str, sql: str, *params: object) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


@pytest.fixture
def shared_thread(
    sandbox: Sandbox, postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """A thread whose one turn wrote notes.txt, copied into the test's Postgres, which the CLI then uses."""
    answers = [script.tool_call("write", {"path": "notes.txt", "content": "draft\n"}, id="w1"), "Wrote it."]
    asyncio.run(seed_thread(THREAD, "write the notes", answers))
    assert ml_intern("db", "copy", "--from", "sqlite", "--to", postgres_url) == 0
    monkeypatch.setenv("ML_INTERN_DATABASE_URL", postgres_url)
    capsys.readouterr()
    return postgres_url


def test_a_lock_holders_planted_host_is_shown_inert_in_the_busy_line(
    shared_thread: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = acquire(shared_thread, THREAD, "running a turn")
    try:
        execute(shared_thread, "UPDATE ml_intern_locks SET host = %s, doing = %s", PLANTED, PLANTED)
        assert ml_intern("undo", THREAD) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert f"is busy: pid {os.getpid()} on {SHOWN} is {SHOWN} (since" in err


def test_an_undo_calls_planted_host_is_shown_inert_in_the_report(
    shared_thread: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(shared_thread, "UPDATE ml_intern_undo_calls SET host = %s, home_id = 'another-home'", PLANTED)
    assert ml_intern("undo", THREAD) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert f"changed on {SHOWN}: undo cannot put it back from here" in out


@pytest.mark.parametrize("command", [("threads",), ("show", THREAD)], ids=["threads", "show"])
def test_a_threads_planted_machine_is_shown_inert(
    shared_thread: str, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    execute(shared_thread, "UPDATE ml_intern_threads SET host = %s, workdir = %s", PLANTED, PLANTED)
    assert ml_intern(*command) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out
