"""Two machines on one Postgres (two ML_INTERN_HOMEs, working directories and `ml-intern` processes sharing
ML_INTERN_DATABASE_URL): a thread started on A is listed, finished and undone on B, and a thread A is working
on is refused to B in one line."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest

from ml_intern.session.session import open_session
from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness_cli import MODEL, Workspace, error_lines
from tests.harness_teams import query, two_machines

pytestmark = pytest.mark.e2e  # `ml-intern` processes

OTHER_MACHINE = "machine-a.example"  # what A's rows say once A is made another machine (see below)


@pytest.fixture
def machines(tmp_path: Path, llm_server: ScriptedLLMServer, postgres_url: str) -> tuple[Workspace, Workspace]:
    return two_machines(tmp_path, llm_server, postgres_url)


async def transcript(url: str, thread_id: str) -> list[str]:
    async with open_session(url) as session:
        return [m.type for m in await session.messages(thread_id)]


def test_a_thread_started_on_one_machine_is_listed_finished_and_undone_on_another(
    machines: tuple[Workspace, Workspace], llm_server: ScriptedLLMServer, postgres_url: str
) -> None:
    a, b = machines
    llm_server.push(script.tool_call("write", {"path": "notes.txt", "content": "draft\n"}, id="w1"))
    started = a.run("--model", MODEL, "--max-iterations", "1", "write the notes")
    assert started.returncode == 3, started.stderr  # cut off by the iteration cap, after the write ran
    assert (a.workdir / "notes.txt").read_text() == "draft\n"
    [(thread_id, host)] = query(postgres_url, "SELECT thread_id, host FROM ml_intern_threads")
    assert host == socket.gethostname()

    listed = b.run("threads")
    assert listed.returncode == 0, listed.stderr
    found = [line for line in listed.stdout.splitlines() if line.lstrip().startswith(thread_id)]
    assert len(found) == 1, listed.stdout
    line = found[0]
    assert "write the notes" in line and socket.gethostname() in re.split(r"\s{2,}", line.strip())  # machine

    llm_server.push(script.text("The notes are written."))
    finished = b.run("resume", thread_id, "--continue")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == "The notes are written.\n"
    assert asyncio.run(transcript(postgres_url, thread_id)) == ["human", "ai", "tool", "ai"]

    # Both processes run here: A's turn is made another machine's by what its rows say (a host name).
    query(postgres_url, "UPDATE ml_intern_undo_turns SET host = %s", OTHER_MACHINE)
    query(postgres_url, "UPDATE ml_intern_undo_calls SET host = %s", OTHER_MACHINE)
    undone = b.run("undo", thread_id)
    assert undone.returncode == 0, undone.stderr
    why = f"changed on {OTHER_MACHINE}: undo cannot put it back from here"
    assert f"  not restored: notes.txt ({why})" in undone.stdout.splitlines()
    assert "Undid 1 user turn" in undone.stdout
    assert asyncio.run(transcript(postgres_url, thread_id)) == []  # the conversation is rewound
    assert (a.workdir / "notes.txt").read_text() == "draft\n"  # A's file, untouched


def test_a_thread_busy_on_one_machine_is_refused_on_another_in_one_line(
    machines: tuple[Workspace, Workspace], llm_server: ScriptedLLMServer, postgres_url: str
) -> None:
    a, b = machines
    llm_server.push(script.text("Hello."), script.delay(6, script.text("Slow answer.")))
    assert a.run("--model", MODEL, "hello").returncode == 0
    [(thread_id,)] = query(postgres_url, "SELECT thread_id FROM ml_intern_threads")
    running = a.start("resume", thread_id, "take your time")
    try:
        deadline = time.monotonic() + 60
        while len(llm_server.requests) < 2 and time.monotonic() < deadline:  # A holds the thread: it asked
            time.sleep(0.1)
        refused = b.run("resume", thread_id, "--continue")
    finally:
        out, err = running.communicate(timeout=120)
    assert running.returncode == 0, err
    assert out == "Slow answer.\n"
    assert refused.returncode == 2, refused.stderr
    [line] = error_lines(refused.stderr)
    assert f"thread {thread_id} is busy: pid " in line and f"on {socket.gethostname()} is" in line
    assert refused.stderr.strip() == line


def test_a_turn_whose_lock_connection_drops_stops_in_one_line(
    machines: tuple[Workspace, Workspace], llm_server: ScriptedLLMServer, postgres_url: str
) -> None:
    a, _ = machines
    llm_server.push(script.tool_call("bash", {"command": "sleep 12; echo slept > slept.txt"}, id="s1"))
    running = a.start("--model", MODEL, "sleep a while")
    try:
        deadline = time.monotonic() + 60
        while not llm_server.requests and time.monotonic() < deadline:  # the turn holds the thread
            time.sleep(0.1)
        time.sleep(1)  # the tool call runs
        backends = "SELECT pid FROM pg_stat_activity WHERE application_name = 'ml-intern thread lock'"
        [(backend,)] = query(postgres_url, backends)
        query(postgres_url, "SELECT pg_terminate_backend(%s, 5000)", backend)
        started = time.monotonic()
        out, err = running.communicate(timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
    assert time.monotonic() - started < 8  # stopped within the watch interval, not at the tool's end
    [(thread_id,)] = query(postgres_url, "SELECT thread_id FROM ml_intern_threads")
    assert running.returncode == 1, err
    [line] = error_lines(err)
    assert (
        line
        == f"ml-intern: error: lost the lock on thread {thread_id} (database connection dropped): resume it"
    )
    assert len(llm_server.requests) == 1  # no model call after the lock was lost
    assert not (a.workdir / "slept.txt").exists()
