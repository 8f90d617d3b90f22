"""Undo across homes on one Postgres: a turn's file changes are put back only by the ML_INTERN_HOME that
recorded them (its blob store holds the before-copies), whatever the host names say; a turn continued in
another home is recorded there; a path whose before-copy is gone is left in place, never moved aside."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness_cli import MODEL, Workspace
from tests.harness_teams import query, two_machines

pytestmark = pytest.mark.e2e  # `ml-intern` processes


@pytest.fixture
def machines(tmp_path: Path, llm_server: ScriptedLLMServer, postgres_url: str) -> tuple[Workspace, Workspace]:
    return two_machines(tmp_path, llm_server, postgres_url)


ELSEWHERE = f"changed in another ML_INTERN_HOME on {socket.gethostname()}: undo cannot put it back from here"


def only_thread(url: str) -> str:
    [(thread_id,)] = query(url, "SELECT thread_id FROM ml_intern_threads")
    return thread_id


def test_a_second_home_on_the_same_host_leaves_the_first_homes_files_and_lists_them(
    machines: tuple[Workspace, Workspace], llm_server: ScriptedLLMServer, postgres_url: str
) -> None:
    a, b = machines
    llm_server.push(
        script.tool_call("write", {"path": "notes.txt", "content": "draft\n"}, id="w1"), script.text("Done.")
    )
    assert a.run("--model", MODEL, "write the notes").returncode == 0
    thread_id = only_thread(postgres_url)
    undone = b.run("undo", thread_id)
    assert undone.returncode == 0, undone.stderr
    assert f"  not restored: notes.txt ({ELSEWHERE})" in undone.stdout.splitlines()
    assert (a.workdir / "notes.txt").read_text() == "draft\n"  # A's file: not moved aside from B
    ids = {(a.ml_intern_home / "id").read_text(), (b.ml_intern_home / "id").read_text()}
    assert len(ids) == 2 and (a.ml_intern_home / "id").stat().st_mode & 0o777 == 0o600


def test_a_turn_continued_in_another_home_is_undone_there_and_lists_the_first_homes_files(
    machines: tuple[Workspace, Workspace], llm_server: ScriptedLLMServer, postgres_url: str
) -> None:
    a, b = machines
    llm_server.push(script.tool_call("write", {"path": "a.txt", "content": "from A\n"}, id="w1"))
    assert a.run("--model", MODEL, "--max-iterations", "1", "write both").returncode == 3  # the cap
    thread_id = only_thread(postgres_url)
    llm_server.push(
        script.tool_call("write", {"path": "b.txt", "content": "from B\n"}, id="w2"), script.text("Both.")
    )
    finished = b.run("resume", thread_id, "--continue")
    assert finished.returncode == 0, finished.stderr
    assert (b.workdir / "b.txt").read_text() == "from B\n"
    [(workdir,)] = query(postgres_url, "SELECT workdir FROM ml_intern_undo_calls WHERE call_ids = 'w2'")
    assert workdir == str(b.workdir.resolve())  # B's call, in B's workdir

    undone = b.run("undo", thread_id)
    assert undone.returncode == 0, undone.stderr
    lines = undone.stdout.splitlines()
    assert "  removed: b.txt" in [line.split(" (kept in")[0] for line in lines], undone.stdout
    assert f"  not restored: a.txt ({ELSEWHERE})" in lines
    assert not (b.workdir / "b.txt").exists()
    assert (a.workdir / "a.txt").read_text() == "from A\n"


def test_a_file_whose_before_copy_is_gone_is_left_in_place(
    machines: tuple[Workspace, Workspace], llm_server: ScriptedLLMServer, postgres_url: str
) -> None:
    a, _ = machines
    (a.workdir / "notes.txt").write_text("mine\n")
    llm_server.push(
        script.tool_call("bash", {"command": "echo changed > notes.txt"}, id="b1"), script.text("Ok.")
    )
    assert a.run("--model", MODEL, "rewrite the notes").returncode == 0
    shutil.rmtree(a.ml_intern_home / "snapshots" / "blobs")  # the before-copy of notes.txt is gone

    undone = a.run("undo", only_thread(postgres_url))
    assert undone.returncode == 0, undone.stderr
    why = "its copy from before is not in this ML_INTERN_HOME's snapshot store: left as it is"
    assert f"  not restored: notes.txt ({why})" in undone.stdout.splitlines(), undone.stdout
    assert (a.workdir / "notes.txt").read_text() == "changed\n"  # not moved aside
    assert not (a.ml_intern_home / "undo-trash").exists() or not any(
        (a.ml_intern_home / "undo-trash").rglob("*.txt")
    )
