"""Several processes on one ML_INTERN_HOME, a locked database, a full disk: real `ml-intern` processes."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml_intern.session.session import open_session
from tests.test_crash_resume import FINAL, STEPS, CountingServer, only_thread, read_log, saved_results
from tests.test_faults import MODEL, Workspace, error_lines

TASK = f"append the numbers 1 to {STEPS} to log, one bash call each"
ALL_STEPS = [f"step{n}" for n in range(1, STEPS + 1)]


def database_check(database: Path) -> tuple[str, str]:
    """(PRAGMA integrity_check, journal mode) of a database file."""
    with sqlite3.connect(database) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0], conn.execute(
            "PRAGMA journal_mode"
        ).fetchone()[0]


def create_database(database: Path) -> None:
    """The tables a first run creates, made in this process."""

    async def open_once() -> None:
        async with open_session(database):
            pass

    asyncio.run(open_once())


# ---- two processes at once --------------------------------------------------------------------------------


def test_two_processes_on_one_home_both_finish_and_the_database_stays_consistent(tmp_path: Path) -> None:
    shared = tmp_path / "shared-home"
    with CountingServer() as server:
        workspaces = [Workspace.create(tmp_path / name, server.url, home=shared) for name in ("a", "b")]
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(pool.map(lambda ws: ws.run("-m", MODEL, TASK), workspaces))
    for done in runs:
        assert (done.returncode, done.stdout.strip()) == (0, FINAL), done.stderr
    assert database_check(shared / "checkpoints.sqlite") == ("ok", "wal")
    rows = workspaces[0].thread_rows()
    assert len(rows) == 2 and {(r["turns"], r["stop_reason"]) for r in rows} == {(1, "end_turn")}
    assert {r["workdir"] for r in rows} == {str(ws.workdir) for ws in workspaces}
    for row in rows:
        assert [call for call, _ in saved_results(workspaces[0], row["thread_id"])] == ALL_STEPS
    for ws in workspaces:
        assert read_log(ws) == [str(n) for n in range(1, STEPS + 1)]


# ---- a locked database ------------------------------------------------------------------------------------


@dataclass
class LockedRun:
    """A run started while another connection held the database's write lock."""

    workspace: Workspace
    done: subprocess.CompletedProcess[str]
    seconds: float  # how long the process ran


def run_while_locked(workspace: Workspace, hold: float | None) -> LockedRun:
    """Run a one-step task while a connection holds BEGIN EXCLUSIVE for `hold` seconds (None: to the end)."""
    create_database(workspace.database)
    lock = sqlite3.connect(workspace.database, isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    if hold is not None:
        threading.Timer(hold, lambda: lock.execute("COMMIT")).start()
    started = time.monotonic()
    try:
        done = workspace.run("-m", MODEL, "echo one step", timeout=240)
    finally:
        seconds = time.monotonic() - started
        if hold is None:
            lock.execute("COMMIT")
    return LockedRun(workspace, done, seconds)


LOCK_HOLDS = {"released": 20.0, "held": None}  # seconds the lock is held; None: past the 30 s busy timeout


def run_locked_pair(root: Path) -> dict[str, LockedRun]:
    """Two runs at once: one whose lock is released after 20 s, one whose lock outlasts the busy timeout."""
    with CountingServer(steps=1, command="echo one") as server, ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_while_locked, Workspace.create(root / name, server.url), hold)
            for name, hold in LOCK_HOLDS.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def locked_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LockedRun]:
    return run_locked_pair(tmp_path_factory.mktemp("locked"))


def test_a_briefly_locked_database_is_waited_for(locked_runs: dict[str, LockedRun]) -> None:
    run = locked_runs["released"]
    assert (run.done.returncode, run.done.stdout.strip()) == (0, FINAL), run.done.stderr
    assert run.seconds >= 20.0  # it waited for the lock instead of failing
    assert [r["stop_reason"] for r in run.workspace.thread_rows()] == ["end_turn"]


def test_a_database_locked_past_the_busy_timeout_fails_with_one_clear_line(
    locked_runs: dict[str, LockedRun],
) -> None:
    run = locked_runs["held"]
    assert run.done.returncode in (1, 2) and "Traceback" not in run.done.stderr
    [line] = [line for line in run.done.stderr.splitlines() if "error" in line]
    assert line in error_lines(run.done.stderr)
    assert "locked" in line and str(run.workspace.database) in line
    assert "model call failed" not in line and "resume" not in line


def test_a_database_locked_past_the_busy_timeout_leaves_no_half_written_thread(
    locked_runs: dict[str, LockedRun],
) -> None:
    run = locked_runs["held"]
    assert run.done.returncode != 0 and len(error_lines(run.done.stderr)) == 1
    assert "locked" in error_lines(run.done.stderr)[0]
    assert database_check(run.workspace.database) == ("ok", "wal")
    assert run.workspace.thread_rows() == []
    with sqlite3.connect(run.workspace.database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0


# ---- a full disk ------------------------------------------------------------------------------------------

TMPFS_SIZE = "200k"  # room for the empty database and about one step of this task
DISK_STEP = "echo {n} >> log; seq 1 $(( {n} == 3 ? 20000 : 1500 ))"  # step 3's output spills to a file


@dataclass
class DiskFullRun:
    """A run whose ML_INTERN_HOME filled up, and its resume once space was freed."""

    workspace: Workspace
    done: subprocess.CompletedProcess[str]
    thread_id: str
    log_at_failure: list[str]  # steps the failed run executed
    saved_at_failure: list[tuple[str, str]]  # results it managed to save
    resume: subprocess.CompletedProcess[str]
    integrity: tuple[str, str]  # database check after the failure
    saved_after: list[tuple[str, str]] = field(default_factory=list)  # results after the resume
    log_after: list[str] = field(default_factory=list)  # steps executed in all


def mount_tmpfs(path: Path, size: str) -> bool:
    """Mount a tmpfs of `size` on `path`; False when this user may not (it needs root)."""
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    return subprocess.run(command, check=False, capture_output=True).returncode == 0


def fill_disk_then_resume(root: Path) -> DiskFullRun | None:
    """Run the task with ML_INTERN_HOME on a tiny tmpfs, then enlarge it and resume (None: no tmpfs here)."""
    home = root / "tiny-home"
    home.mkdir()
    if not mount_tmpfs(home, TMPFS_SIZE):
        return None
    try:
        with CountingServer(command=DISK_STEP) as server:
            workspace = Workspace.create(root, server.url, home=home)
            done = workspace.run("-m", MODEL, TASK)
            thread_id = only_thread(workspace)
            log, saved = read_log(workspace), saved_results(workspace, thread_id)
            integrity = database_check(workspace.database)
            subprocess.run(["mount", "-o", "remount,size=20m", str(home)], check=True)
            resume = workspace.run("resume", thread_id, "--continue")
            run = DiskFullRun(workspace, done, thread_id, log, saved, resume, integrity)
            run.saved_after = saved_results(workspace, thread_id)
            run.log_after = read_log(workspace)
            return run
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


@pytest.fixture(scope="module")
def disk_full_run(tmp_path_factory: pytest.TempPathFactory) -> DiskFullRun:
    run = fill_disk_then_resume(tmp_path_factory.mktemp("disk-full"))
    if run is None:
        pytest.skip("a small tmpfs cannot be mounted here (needs root): the full-disk run is not possible")
    return run


def test_disk_full_fails_with_one_clear_line(disk_full_run: DiskFullRun) -> None:
    done = disk_full_run.done
    assert done.returncode in (1, 2)
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert line in error_lines(done.stderr)
    assert "disk is full" in line and "model call failed" not in line


def test_disk_full_stops_the_run_at_the_first_failed_write(disk_full_run: DiskFullRun) -> None:
    executed, saved = len(disk_full_run.log_at_failure), len(disk_full_run.saved_at_failure)
    assert executed < STEPS, "the disk never filled: enlarge the step output or shrink TMPFS_SIZE"
    assert executed - saved <= 1  # at most the step in flight is lost


def test_disk_full_leaves_a_consistent_thread_that_resumes_once_space_is_freed(
    disk_full_run: DiskFullRun,
) -> None:
    assert disk_full_run.done.returncode != 0
    assert disk_full_run.integrity == ("ok", "wal")
    resume = disk_full_run.resume
    assert (resume.returncode, resume.stdout.strip()) == (0, FINAL), resume.stderr
    assert [call for call, _ in disk_full_run.saved_after] == ALL_STEPS
    assert set(disk_full_run.log_after) == {str(n) for n in range(1, STEPS + 1)}
