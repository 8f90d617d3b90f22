"""One writer per thread on a shared Postgres: advisory locks on a connection of their own, whatever the home.

Every test runs against a real Postgres (a fresh database each, migrated as `ml-intern db migrate` leaves it:
the holders' table is a migration); the e2e one kills a real holder process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from ml_intern.errors import EXIT_USAGE
from ml_intern.session import db_locks
from ml_intern.session.checkpointer import StorageError
from ml_intern.session.db_locks import acquire, make_locks, thread_lock
from ml_intern.session.locks import ThreadBusy
from ml_intern.session.storage import open_storage

HOST = socket.gethostname()


async def migrated(url: str) -> None:
    async with open_storage(url):
        pass


def migrate(url: str) -> str:
    with ThreadPoolExecutor(max_workers=1) as pool:  # its own event loop, whatever the test's
        pool.submit(asyncio.run, migrated(url)).result()
    return url


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh database with ml-intern's tables (this module's tests lock threads of a set-up database)."""
    return migrate(postgres_server.create_database())


def holder_rows(url: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT thread_id, pid, host, doing FROM ml_intern_locks ORDER BY thread_id"
        ).fetchall()


def busy_line(url: str, thread_id: str) -> str:
    """The line a second process gets for `thread_id` (the test fails if the thread is free)."""
    with pytest.raises(ThreadBusy) as refused:
        acquire(url, thread_id, "undoing 1 turn")
    assert refused.value.exit_code == EXIT_USAGE and "\n" not in str(refused.value)
    return str(refused.value)


def test_a_second_home_on_the_same_database_is_refused_naming_the_holder(
    postgres_url: str, tmp_path: Path
) -> None:
    first, second = make_locks(postgres_url, tmp_path / "a"), make_locks(postgres_url, tmp_path / "b")
    first.idle = "in a chat"
    first.take("shared")
    with pytest.raises(ThreadBusy) as refused:
        second.take("shared")
    line = str(refused.value)
    assert line.startswith("thread shared is busy: ")
    assert f"pid {os.getpid()} on {HOST} is in a chat (since " in line
    assert holder_rows(postgres_url) == [("shared", os.getpid(), HOST, "in a chat")]
    second.take("other")  # another thread: no conflict
    first.release()
    second.take("shared")  # let go: the second home gets it (and lets its previous thread go)
    assert holder_rows(postgres_url) == [("shared", os.getpid(), HOST, "idle")]
    second.release()
    assert holder_rows(postgres_url) == []
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # no lock files anywhere


async def test_what_the_holder_does_shows_in_the_busy_line(postgres_url: str, tmp_path: Path) -> None:
    locks = make_locks(postgres_url, tmp_path)
    locks.idle = "in a chat"
    locks.take("t1")
    async with locks.writing("t1", "running a turn"):
        assert "is running a turn (since " in busy_line(postgres_url, "t1")
    assert "is in a chat (since " in busy_line(postgres_url, "t1")
    async with locks.writing("t2", "undoing 2 turns"):  # another thread: locked for the while
        assert "is undoing 2 turns" in busy_line(postgres_url, "t2")
    acquire(postgres_url, "t2", "free again").release()
    locks.release()


async def test_thread_lock_is_released_when_the_block_fails(postgres_url: str) -> None:
    with pytest.raises(RuntimeError):
        async with thread_lock(postgres_url, "t1", "undoing"):
            busy_line(postgres_url, "t1")
            raise RuntimeError("boom")
    async with thread_lock(postgres_url, "t1", "undoing") as lock:
        assert lock.held
    assert not lock.held and holder_rows(postgres_url) == []


HOLDER = """
import sys, time
from ml_intern.session.db_locks import acquire
lock = acquire(sys.argv[1], "shared", "running a turn")  # held while referenced
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.e2e
def test_a_killed_holder_process_frees_the_thread_at_once(
    postgres_url: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "ML_INTERN_HOME": str(tmp_path / "other-home")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, postgres_url], env=env, stdout=subprocess.PIPE, text=True
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        line = busy_line(postgres_url, "shared")
        assert f"thread shared is busy: pid {holder.pid} on {HOST} is running a turn (since " in line
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        killed = time.monotonic()
        lock = retry_until_free(postgres_url, "shared")
        assert time.monotonic() - killed < 5
    finally:
        holder.kill()
        holder.wait()
    assert holder_rows(postgres_url) == [
        ("shared", os.getpid(), HOST, "after the kill")
    ]  # the stale row: ours
    lock.release()


def retry_until_free(url: str, thread_id: str) -> db_locks.DatabaseThreadLock:
    """The lock, once the server has seen the holder's connection end (a few milliseconds)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return acquire(url, thread_id, "after the kill")
        except ThreadBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def cut_connection(url: str, lock: db_locks.DatabaseThreadLock) -> None:
    """End the lock's connection from the server side (a restart, a network failure)."""
    assert lock.conn is not None
    backend = lock.conn.info.backend_pid
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (backend,))


async def test_a_lost_connection_is_taken_again_at_the_next_operation(
    postgres_url: str, tmp_path: Path
) -> None:
    locks = make_locks(postgres_url, tmp_path)
    locks.take("t1")
    assert locks.current is not None
    cut_connection(postgres_url, locks.current)  # type: ignore[arg-type]
    async with locks.writing("t1", "running a turn"):  # nobody took it meanwhile: locked again
        assert "is running a turn" in busy_line(postgres_url, "t1")
    locks.release()
    assert holder_rows(postgres_url) == []


async def test_a_thread_taken_while_the_connection_was_lost_is_refused(
    postgres_url: str, tmp_path: Path
) -> None:
    locks = make_locks(postgres_url, tmp_path)
    locks.take("t1")
    cut_connection(postgres_url, locks.current)  # type: ignore[arg-type]
    other = acquire(postgres_url, "t1", "running a turn")
    with pytest.raises(ThreadBusy, match="is running a turn"):
        async with locks.writing("t1", "running a turn"):
            pytest.fail("a second writer ran")
    with pytest.raises(ThreadBusy):
        locks.take("t1")  # the lost lock is not "still ours"
    other.release()
    locks.take("t1")
    locks.release()


def test_lockers_racing_all_get_their_threads(postgres_url: str) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        locks = list(pool.map(lambda n: acquire(postgres_url, f"t{n}", "racing"), range(8)))
    assert [row[0] for row in holder_rows(postgres_url)] == [f"t{n}" for n in range(8)]
    for lock in locks:
        lock.release()


def test_an_unreachable_database_is_one_line_without_its_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(StorageError) as failed:
        acquire(f"postgresql://agent:s3cret-pw@127.0.0.1:{port}/team", "t1", "running a turn")
    line = str(failed.value)
    assert failed.value.exit_code == EXIT_USAGE and "\n" not in line and "s3cret-pw" not in line
    assert line.startswith(f"cannot reach the database postgresql://agent:[redacted]@127.0.0.1:{port}/team: ")


def test_a_role_that_may_only_read_and_write_rows_locks_threads_of_a_migrated_database(
    postgres_server,
) -> None:
    url = postgres_server.create_database()
    with pytest.raises(
        StorageError, match=r"has no ml-intern tables yet: run `ml-intern db migrate`$"
    ) as raised:
        acquire(url, "t1", "running a turn")  # nothing set up: said, not created behind the owner's back
    assert raised.value.exit_code == EXIT_USAGE
    migrate(url)
    role = f"dml_{url.rsplit('/', 1)[1]}"
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        owner.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}, PUBLIC")
    lock = acquire(url.replace("postgres@", f"{role}@"), "t1", "running a turn")
    assert holder_rows(url) == [("t1", os.getpid(), HOST, "running a turn")]
    lock.release()


def test_a_role_that_may_not_write_the_holders_table_is_told_what_to_do_exit_2(postgres_url) -> None:
    role = f"ro_{postgres_url.rsplit('/', 1)[1]}"
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    with pytest.raises(StorageError) as refused:
        acquire(postgres_url.replace("postgres@", f"{role}@"), "t1", "running a turn")
    line = str(refused.value)
    assert refused.value.exit_code == EXIT_USAGE and "\n" not in line  # configuration, as when storage opens
    assert (
        line.startswith("cannot lock thread t1 in ") and "permission denied for table ml_intern_locks" in line
    )
    assert line.endswith(
        "ask the database's owner to run `ml-intern db migrate` (or to grant this role CREATE on the schema)"
    )


def test_a_sqlite_target_keeps_the_lock_files(tmp_path: Path) -> None:
    locks = make_locks(tmp_path / "checkpoints.sqlite", tmp_path)
    locks.take("t1")
    assert [path.name for path in (tmp_path / "locks").iterdir()] == ["t1.lock"]
    locks.release()
    assert make_locks(None, None).lock("t1", "x") is None  # no database: no locking
