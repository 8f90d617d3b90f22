"""Several processes on one ML_INTERN_HOME, a locked database, a full disk: real `ml-intern` processes."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fakes.counting_server import ALL_STEPS, FINAL, STEPS, TASK, CountingServer
from tests.harness_cli import MODEL, Workspace, database_check, error_lines, read_log, saved_results
from tests.harness_crashes import DiskFullRun, LockedRun, fill_disk_then_resume, run_locked_pair

pytestmark = pytest.mark.e2e  # several `ml-intern` processes at once

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
