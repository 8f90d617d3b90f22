"""The storage layer on both backends: the SQLite file in ML_INTERN_HOME and a real Postgres database
(tests/harness_postgres.py). Threads, the undo journal and undo itself behave the same on each; migrations
adopt an old SQLite file and run safely from several processes at once; failures are one line."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ml_intern.errors import UserError
from ml_intern.paths import checked_url, database_target, driver_line, shown_target
from ml_intern.secrets import redact
from ml_intern.session.checkpointer import StorageError
from ml_intern.session.journal import turn_calls
from ml_intern.session.migrations import LATEST
from ml_intern.session.runner import turn_failure
from ml_intern.session.session import open_session
from ml_intern.session.storage import open_storage
from tests import harness_undo as lab
from tests.harness import child_python_path
from tests.harness_graph import old_sqlite_database

HOST = socket.gethostname()


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, sandbox) -> Path | str:
    """Each backend in turn: the sandbox's SQLite file, or a fresh Postgres database."""
    if request.param == "sqlite":
        return sandbox.ml_intern_home / "checkpoints.sqlite"
    return request.getfixturevalue("postgres_url")


async def rows(target: Path | str, query: str) -> list[tuple]:
    async with open_storage(target) as storage, storage.db.execute(query) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def test_threads_start_end_list_and_find_with_the_machine(target):
    async with open_session(target) as session:
        threads = session.threads
        await threads.start_turn("aaaa11112222", "first prompt", "m1", "/w")
        await threads.start_turn("bbbb11112222", "other", "m1", "/elsewhere")
        await threads.start_turn("aaaa11112222", "second prompt", "m2", "/w")
        await threads.end_turn("aaaa11112222", "end_turn", {"input_tokens": 3_000_000_000, "cost_usd": 0.5})
        found = await session.find_thread("aaaa")
        listed = [info.thread_id for info in await session.list_threads()]
        latest = await threads.latest_in(Path("/w"))
    assert (found.title, found.model, found.turns, found.host) == ("first prompt", "m2", 2, HOST)
    assert (found.input_tokens, found.cost_usd, found.stop_reason) == (3_000_000_000, 0.5, "end_turn")
    assert listed == ["aaaa11112222", "bbbb11112222"]
    assert latest is not None and latest.thread_id == "aaaa11112222"
    assert found.updated_at > found.created_at > 1.7e9  # times keep their sub-second precision


async def test_a_prefix_matching_nothing_or_several_threads_is_one_line(target):
    async with open_session(target) as session:
        for thread in ("cafe00000001", "cafe00000002"):
            await session.threads.start_turn(thread, "p", "m", "/w")
        with pytest.raises(UserError, match="several threads matching 'cafe'"):
            await session.find_thread("cafe")
        with pytest.raises(UserError, match="no thread matching 'beef'"):
            await session.find_thread("beef")


async def test_a_prefix_finds_its_thread_whatever_its_case_on_both_backends(target):
    async with open_session(target) as session:
        await session.threads.start_turn("cafe0000abcd", "p", "m", "/w")
        found = [(await session.find_thread(prefix)).thread_id for prefix in ("CAFE", "Cafe0000AB", "cafe")]
    assert found == ["cafe0000abcd"] * 3


async def test_the_journal_records_a_turns_calls_and_its_machine(sandbox, target):
    script = [lab.bash("echo one > a.txt"), lab.bash("echo two > b.txt"), "done"]
    async with lab.open_agent(sandbox, script, target=target) as agent:
        await agent.send("write two files")
        snapshots = agent.session.snapshots
        journal = await snapshots.latest_turn("t1")
        assert journal is not None and journal.host == HOST
        assert (await snapshots.turn_owner("t1", journal.base))[0] == HOST
        assert await snapshots.turn_owner("t1", "no such turn") is None
        calls = await turn_calls(snapshots.conn, "t1", journal.base)
    assert [call.seq for call in calls] == [2, 1]
    assert [[change[0] for change in call.changes or []] for call in calls] == [["b.txt"], ["a.txt"]]
    assert all(call.ended_at is not None and call.ended_at >= call.started_at for call in calls)


async def test_undo_puts_files_and_the_conversation_back(sandbox, target):
    lab.put(sandbox.workdir, {"keep.txt": "original\n"})
    script = [lab.bash("echo changed > keep.txt && echo new > new.txt"), "done", "second done"]
    async with lab.open_agent(sandbox, script, target=target) as agent:
        await agent.send("first")
        await agent.send("second")
        await agent.undo(2)
        report_turns = await agent.session.user_turns("t1")
        info = await agent.session.find_thread("t1")
    assert (sandbox.workdir / "keep.txt").read_text() == "original\n"
    assert not (sandbox.workdir / "new.txt").exists()
    assert report_turns == 0 and info.turns == 0 and info.title == ""


async def test_two_threads_in_one_workdir_undo_only_their_own_files(sandbox, target):
    async with (
        lab.open_agent(sandbox, [lab.bash("sleep 0.5; echo a > a.txt"), "a"], "A", target=target) as a,
        lab.open_agent(sandbox, [lab.bash("sleep 0.1; echo b > b.txt"), "b"], "B", target=target) as b,
    ):
        await asyncio.gather(a.send("a"), b.send("b"))
        await a.undo()
    assert sorted(p.name for p in sandbox.workdir.iterdir()) == ["b.txt"]


async def test_the_saver_on_postgres_keeps_versions_compact_and_large_blobs_compressed(sandbox, postgres_url):
    big = "x" * 20_000
    script = [lab.bash(f"echo {big}"), "done"]
    async with lab.open_agent(sandbox, script, target=postgres_url) as agent:
        await agent.send("print a lot")
    query = "SELECT type FROM checkpoint_blobs UNION SELECT type FROM checkpoint_writes"
    kinds = {row[0] for row in await rows(postgres_url, query)}
    versions = await rows(postgres_url, "SELECT checkpoint->'channel_versions' FROM checkpoints")
    assert "msgpack+zlib" in kinds
    assert all(str(v).isdigit() for row in versions for v in row[0].values())
    storage = "SELECT attstorage FROM pg_attribute WHERE attname = 'blob' AND attrelid IN"
    storage += " (CAST('checkpoint_writes' AS regclass), CAST('checkpoint_blobs' AS regclass))"
    assert await rows(postgres_url, storage) == [("m",), ("m",)]  # kept in the row, not moved to TOAST


async def test_an_sqlite_database_from_before_migrations_is_adopted(sandbox):
    database = sandbox.ml_intern_home / "checkpoints.sqlite"
    old_sqlite_database(
        database,
        "INSERT INTO ml_intern_threads VALUES ('old000000001', 'old', 'm', '/w', 1, 2, 3, NULL, 4, 5, NULL)",
        "INSERT INTO ml_intern_undo_turns VALUES ('old000000001', 'c1', '/w', 1)",
    )
    async with open_session(database) as session:
        info = await session.find_thread("old")
        host, _ = await session.snapshots.turn_owner("old000000001", "c1")
    assert (info.title, info.turns, info.input_tokens, info.tool_runtime, info.host) == (
        "old",
        3,
        4,
        "local",
        "",
    )
    assert host == ""
    versions = await rows(database, "SELECT version FROM ml_intern_migrations ORDER BY version")
    assert versions == [(n,) for n in range(1, LATEST + 1)]


async def test_opening_again_applies_no_migration_twice(target):
    for _ in range(2):
        async with open_session(target):
            pass
    assert await rows(target, "SELECT COUNT(*), MAX(version) FROM ml_intern_migrations") == [(LATEST, LATEST)]


OPEN_ONCE = textwrap.dedent(
    """
    import asyncio, sys
    from ml_intern.session.storage import open_storage

    async def main():
        async with open_storage(sys.argv[1]) as storage:
            await storage.saver.aget_tuple({"configurable": {"thread_id": "x"}})

    asyncio.run(main())
    print("ok")
    """
)


@pytest.mark.e2e
def test_processes_starting_at_once_on_a_fresh_database_all_succeed(postgres_server, sandbox):
    urls = [postgres_server.create_database() for _ in range(2)]
    env = {"PYTHONPATH": child_python_path(), "PATH": "/usr/bin:/bin", "HOME": str(sandbox.home)}
    env["ML_INTERN_HOME"] = str(sandbox.ml_intern_home)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_ONCE, url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in urls
        for _ in range(4)
    ]
    results = [(child.communicate(timeout=120), child.returncode) for child in children]
    assert [(code, out.strip()) for (out, _), code in results] == [(0, "ok")] * 8, [
        e for (_, e), _ in results
    ]
    for url in urls:
        assert asyncio.run(rows(url, "SELECT COUNT(*) FROM ml_intern_migrations")) == [(LATEST,)]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("where", ["refused", "no such database"])
async def test_a_database_that_cannot_be_reached_is_one_line_without_the_password(postgres_server, where):
    port = closed_port() if where == "refused" else postgres_server.port
    url = f"postgresql://postgres:Sup3rSecretPw@127.0.0.1:{port}/nosuchdb"
    with pytest.raises(StorageError) as raised:
        async with open_session(url):
            pass
    line = str(raised.value)
    assert "\n" not in line and "Sup3rSecretPw" not in line
    assert line.startswith(
        f"cannot reach the database postgresql://postgres:[redacted]@127.0.0.1:{port}/nosuchdb: "
    )
    assert line.endswith("check ML_INTERN_DATABASE_URL (or the config's database_url)")
    assert "Sup3rSecretPw" not in redact(f"connecting to {url}")  # registered as a secret: redacted anywhere


async def test_a_database_error_during_a_turn_is_a_storage_failure(postgres_url):
    async with open_session(postgres_url) as session:
        with pytest.raises(psycopg.Error) as raised:
            await session.threads.conn.execute("SELECT * FROM no_such_table")
        failed = turn_failure(raised.value, "t1", None, session.storage)  # type: ignore[arg-type]
    assert not failed.resumable and failed.exit_code == 1
    assert str(failed).startswith(f"cannot save thread t1 in {shown_target(postgres_url)}: ")


def test_the_target_is_the_variable_then_the_config_then_the_sqlite_file(sandbox, monkeypatch):
    config = sandbox.home / "ml-intern.json"
    monkeypatch.setenv("ML_INTERN_CONFIG", str(config))
    config.write_text(json.dumps({"database_url": "postgresql://team:${TEAM_DB_PW}@db.internal/threads"}))
    monkeypatch.setenv("TEAM_DB_PW", "pw-from-env-123")
    assert database_target(dict(os.environ)) == "postgresql://team:pw-from-env-123@db.internal/threads"
    env = {**os.environ, "ML_INTERN_DATABASE_URL": "postgres://u@h/d"}
    assert database_target(env) == "postgres://u@h/d"
    config.write_text("{}")
    assert database_target(dict(os.environ)) == sandbox.ml_intern_home / "checkpoints.sqlite"


def test_a_target_that_is_not_a_postgres_url_is_one_line_without_the_password(sandbox):
    with pytest.raises(UserError) as raised:
        database_target(
            {"ML_INTERN_DATABASE_URL": "mysql://root:hunter2hunter2@h/db", "HOME": str(sandbox.home)}
        )
    line = str(raised.value)
    assert "hunter2hunter2" not in line and "\n" not in line
    assert line.startswith("ML_INTERN_DATABASE_URL must be a postgresql:// (or postgres://) URL, not")
    assert "mysql://root:[redacted]@h/db" in line


async def test_undo_lists_the_files_a_turn_changed_on_another_machine_and_leaves_them(sandbox, target):
    async with lab.open_agent(
        sandbox, [lab.bash("echo a > a.txt && echo b > b.txt"), "done"], target=target
    ) as agent:
        await agent.send("make files")
        await agent.session.snapshots.conn.execute(
            "UPDATE ml_intern_undo_calls SET host = 'gpu-box-2', home_id = 'another-home'"
        )
        await agent.session.snapshots.conn.commit()
        report = await agent.undo()
    assert sorted(p.name for p in sandbox.workdir.iterdir()) == ["a.txt", "b.txt"]
    reason = "changed on gpu-box-2: undo cannot put it back from here"
    assert lab.why(report) == {"a.txt": reason, "b.txt": reason}
    assert report.turns_undone == 1 and report.removed == []


def test_a_drivers_message_shows_the_password_as_in_shown_urls(sandbox):
    url = checked_url("postgresql://team:Reg1stered-pw@db.internal/threads", "ML_INTERN_DATABASE_URL")
    said = driver_line(ValueError(f"bad dsn {url}\nsecond line password=Reg1stered-pw"), url)
    assert said == "bad dsn postgresql://team:[redacted]@db.internal/threads"
    assert driver_line(ValueError("password=Reg1stered-pw rejected"), url) == "password=[redacted] rejected"


def test_a_malformed_url_is_one_line_not_an_internal_error(sandbox):
    with pytest.raises(UserError) as raised:
        database_target(
            {"ML_INTERN_DATABASE_URL": "postgresql://u:pw-in-v6-url@[::1/db", "HOME": str(sandbox.home)}
        )
    assert str(raised.value).startswith("ML_INTERN_DATABASE_URL is not a valid URL (")
    assert "pw-in-v6-url" not in str(raised.value) and raised.value.exit_code == 2


async def test_a_role_that_may_not_create_the_tables_is_told_who_sets_them_up(postgres_server):
    url = postgres_server.create_database()
    role = f"reader_{url.rsplit('/', 1)[1]}"
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
        owner.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}, PUBLIC")
    with pytest.raises(StorageError) as raised:
        async with open_storage(url.replace("postgres@", f"{role}@")):
            pass
    line = str(raised.value)
    assert "permission denied for schema public; this role may not create" in line and "\n" not in line
    assert line.endswith(
        "ask the database's owner to run `ml-intern db migrate` (or to grant this role CREATE on the schema)"
    )


def reads(sandbox, first: int, count: int) -> list[Any]:
    """`count` replies each reading a distinct 5 KB file of the workdir, then a closing text."""
    from langchain_core.messages import AIMessage

    script: list[Any] = []
    for n in range(first, first + count):
        page = (hashlib.sha256(str(n).encode()).hexdigest() + "\n") * 80  # 5,200 characters, 80 lines
        (sandbox.workdir / f"page{n}.txt").write_text(page)
        call = {"name": "read", "args": {"path": f"page{n}.txt"}, "id": f"r{n}", "type": "tool_call"}
        script.append(AIMessage(content="", tool_calls=[call]))
    return [*script, "read them"]


async def test_postgres_storage_grows_linearly_and_stays_under_three_times_the_transcript(
    sandbox, postgres_url
):
    # Measured (30 + 30 reads of 5 KB, over the empty tables' 0.23 MB): 0.43 MB, then 0.75 MB in all, for a
    # 0.35 MB transcript (2.15x; about 4x when every model call took five node steps).
    async with lab.open_agent(sandbox, [], target=postgres_url):
        empty = await database_bytes(postgres_url)  # the migrated tables and their indexes, no thread yet
    sizes = []
    for turn in range(2):
        async with lab.open_agent(sandbox, reads(sandbox, turn * 30, 30), target=postgres_url) as agent:
            outcome = await agent.send(f"read batch {turn}")
        assert outcome.stop_reason == "end_turn"
        sizes.append(await database_bytes(postgres_url) - empty)
    async with lab.open_agent(sandbox, [], target=postgres_url) as agent:
        state = await agent.session.app.aget_state({"configurable": {"thread_id": agent.thread}})
    messages = state.values["messages"]
    transcript = sum(len(str(m.content)) + len(str(getattr(m, "tool_calls", ""))) for m in messages)
    first, total = sizes
    assert len(messages) == 2 * (2 + 30 * 2)
    assert total - first < 1.25 * first, f"sizes {first} then {total}: not linear"
    assert total < 3 * transcript, f"{total} bytes stored for a {transcript}-byte transcript"


async def database_bytes(url: str) -> int:
    """Our schema's tables, indexes and TOAST included (what bench/postgres.py measures)."""
    query = (
        "SELECT CAST(COALESCE(sum(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
    )
    return (await rows(url, query))[0][0]
