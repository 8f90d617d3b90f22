"""One writer per thread: a second process on a busy thread gets one line naming the first and exit 2.

The first tests take the lock in this process; the e2e ones run real `ml-intern` processes against a scripted
model server whose slow answer waits on a gate the test opens."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pexpect
import pytest

from ml_intern.errors import EXIT_USAGE
from ml_intern.graph.context import RunContext
from ml_intern.session.locks import ThreadBusy, acquire, thread_lock
from ml_intern.session.session import open_session
from ml_intern.session.undo import NothingToUndo
from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import Sandbox, installed_cli
from tests.harness_cli import MODEL, Workspace, error_lines
from tests.harness_crashes import GatedServer, seeded, wait_for_requests

# ---- the lock, in this process -----------------------------------------------------------------------------


def test_a_second_lock_on_a_thread_is_refused_naming_the_holder(tmp_path: Path) -> None:
    held = acquire(tmp_path, "t1", "running a turn")
    with pytest.raises(ThreadBusy) as refused:
        acquire(tmp_path, "t1", "undoing 1 turn")
    line = str(refused.value)
    assert refused.value.exit_code == EXIT_USAGE and "\n" not in line
    assert line.startswith("thread t1 is busy: ")
    assert f"pid {os.getpid()} on {socket.gethostname()} is running a turn (since " in line
    assert held is not None
    held.release()


def test_a_released_lock_is_free_and_other_threads_never_wait(tmp_path: Path) -> None:
    first = acquire(tmp_path, "t1", "a")
    other = acquire(tmp_path, "t2", "b")  # another thread: no conflict
    assert first is not None and other is not None
    first.release()
    again = acquire(tmp_path, "t1", "c")
    assert again is not None
    for lock in (other, again):
        lock.release()


async def test_thread_lock_is_released_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        async with thread_lock(tmp_path, "t1", "undoing"):
            raise RuntimeError("boom")
    async with thread_lock(tmp_path, "t1", "undoing"):
        pass


async def test_a_session_holds_its_thread_until_it_closes(sandbox: Sandbox) -> None:
    database = sandbox.ml_intern_home / "checkpoints.sqlite"
    ctx = RunContext(model=MODEL, workdir=str(sandbox.workdir))
    async with open_session(database) as first, open_session(database) as second:
        await first.begin(ctx, "shared")
        with pytest.raises(ThreadBusy, match="thread shared is busy"):
            await second.begin(ctx, "shared")
        with pytest.raises(ThreadBusy):
            await second.undo("shared")
        with pytest.raises(NothingToUndo):  # the holder itself is not refused: there is just no turn
            await first.undo("shared")
        await first.close()
        await second.begin(ctx, "shared")
        await second.close()


async def test_new_thread_lets_the_previous_thread_go(sandbox: Sandbox) -> None:
    database = sandbox.ml_intern_home / "checkpoints.sqlite"
    ctx = RunContext(model=MODEL, workdir=str(sandbox.workdir))
    async with open_session(database) as first, open_session(database) as second:
        await first.begin(ctx, "left")
        await first.new_thread()
        await second.begin(ctx, "left")
        with pytest.raises(ThreadBusy):
            await second.begin(ctx, first.thread_id)
        await first.close()
        await second.close()


# ---- real processes ----------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_second_resume_of_a_busy_thread_is_refused_then_runs_once_it_is_free(tmp_path: Path) -> None:
    with GatedServer() as server:
        workspace, thread = seeded(tmp_path, server)
        server.push(script.delay(120, script.text("slow answer")))
        first = workspace.start("resume", thread, "slow task")
        wait_for_requests(server, 2, first)
        refused = workspace.run("resume", thread, "second task")
        server.gate.set()
        first_out, first_err = first.communicate(timeout=60)
        server.push(script.text("second answer"))
        after = workspace.run("resume", thread, "second task")
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()
    assert line in error_lines(refused.stderr)
    assert f"thread {thread} is busy: pid {first.pid} on {socket.gethostname()} is running a turn" in line
    assert (first.returncode, first_out.strip()) == (0, "slow answer"), first_err
    assert (after.returncode, after.stdout.strip()) == (0, "second answer"), after.stderr
    answers = [m.content for m in workspace_messages(workspace, thread) if m.type == "ai"]
    assert answers == ["first answer", "slow answer", "second answer"]
    assert [r["turns"] for r in workspace.thread_rows()] == [3]


def workspace_messages(workspace: Workspace, thread: str) -> list:
    return asyncio.run(workspace.messages(thread))


@pytest.mark.e2e
def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    with GatedServer() as server:
        workspace, thread = seeded(tmp_path, server)
        server.push(script.delay(120, script.text("never sent")))
        holder = workspace.start("resume", thread, "slow task")
        wait_for_requests(server, 2, holder)
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
        server.gate.set()
        server.push(script.text("after the kill"))
        done = workspace.run("resume", thread, "again")
    assert (done.returncode, done.stdout.strip()) == (0, "after the kill"), done.stderr
    assert list((workspace.ml_intern_home / "locks").iterdir()) == []  # released and removed


@pytest.mark.e2e
def test_undo_of_a_thread_another_process_works_on_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with ScriptedLLMServer() as server:
        workspace, thread = seeded(tmp_path, server)
    lock = acquire(workspace.ml_intern_home, thread, "running a turn")
    try:
        refused = workspace.run("undo", thread)
    finally:
        assert lock is not None
        lock.release()
    assert refused.returncode == 2
    [line] = error_lines(refused.stderr)
    assert f"pid {os.getpid()}" in line and "running a turn" in line
    [row] = workspace.thread_rows()
    assert (row["turns"], row["title"]) == (1, "first task")


@pytest.mark.e2e
def test_two_undos_at_once_never_undo_the_same_turn_twice(tmp_path: Path) -> None:
    with ScriptedLLMServer() as server:
        workspace, thread = seeded(tmp_path, server)
        server.push(script.text("second answer"))
        assert workspace.run("resume", thread, "second task").returncode == 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda _: workspace.run("undo", thread), range(2)))
    undone = [run for run in runs if run.returncode == 0]
    refused = [run for run in runs if run.returncode != 0]
    for run in refused:
        assert run.returncode == 2 and f"thread {thread} is busy" in error_lines(run.stderr)[0]
    [row] = workspace.thread_rows()
    turns = sum(1 for m in workspace_messages(workspace, thread) if m.type == "human")
    assert row["turns"] == turns == 2 - len(undone)
    assert row["title"] == ("first task" if turns else "")


@pytest.mark.e2e
def test_a_chat_holds_its_thread_until_it_ends(tmp_path: Path) -> None:
    with ScriptedLLMServer() as server:
        workspace, thread = seeded(tmp_path, server)
        chat = pexpect.spawn(
            str(installed_cli()), ["resume", thread], env=workspace.env, cwd=str(workspace.workdir),
            dimensions=(50, 120), encoding="utf-8", timeout=60,
        )  # fmt: skip
        chat.expect_exact("\x1b[?2004h")  # the prompt is shown: the chat has the thread
        refused = workspace.run("undo", thread)
        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
        chat.close()
        undone = workspace.run("undo", thread)
    assert refused.returncode == 2
    assert f"pid {chat.pid}" in error_lines(refused.stderr)[0] and "in a chat" in refused.stderr
    assert undone.returncode == 0, undone.stderr


@pytest.mark.e2e
def test_a_chat_on_a_busy_thread_says_who_has_it_and_exits_2(tmp_path: Path) -> None:
    with ScriptedLLMServer() as server:
        workspace, thread = seeded(tmp_path, server)
    lock = acquire(workspace.ml_intern_home, thread, "running a turn")
    try:
        chat = pexpect.spawn(
            str(installed_cli()), ["resume", thread], env=workspace.env, cwd=str(workspace.workdir),
            dimensions=(50, 200), encoding="utf-8", timeout=60,
        )  # fmt: skip
        chat.expect(pexpect.EOF)
        chat.close()
    finally:
        assert lock is not None
        lock.release()
    assert chat.exitstatus == 2
    assert f"thread {thread} is busy: pid {os.getpid()}" in " ".join(chat.before.split())
