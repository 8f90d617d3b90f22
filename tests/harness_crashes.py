"""The crash and storage scenarios, run against real `ml-intern` processes: `kill -9` mid-run then resume,
a database locked by another writer, a full disk. `tests/test_crash_resume.py`, `tests/test_concurrency.py`
and `bench/faults.py` check what they leave behind."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.session.session import open_session
from tests.fakes import llm_server as script
from tests.fakes.counting_server import FINAL, STEPS, TASK, CountingServer
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness_cli import MODEL, Workspace, database_check, only_thread, read_log, saved_results

RUN_SECONDS = 1.8  # an uninterrupted run lasts ~2 s after its first model request: kill within it
SEED = 20260611

# ---- kill -9, then resume ----------------------------------------------------------------------------------


@dataclass
class CrashReport:
    """What one kill and resume left behind."""

    delay: float  # seconds after the first model request when the process was killed
    killed_code: int | None  # the killed process's return code (-9 unless it had already finished)
    log_at_kill: list[str]  # lines the steps had appended to `log` when the process died
    saved_at_kill: list[tuple[str, str]]  # (call id, result) saved in the thread when the process died
    resume: subprocess.CompletedProcess[str]
    log_after: list[str]
    saved_after: list[tuple[str, str]]

    def problems(self) -> list[str]:
        """Every way the run broke the crash contract (empty: it held)."""
        found = []
        if self.resume.returncode != 0 or self.resume.stdout.strip() != FINAL:
            found.append(f"resume exited {self.resume.returncode}: {self.resume.stderr.strip()[-300:]}")
        ids = [f"step{n}" for n in range(1, STEPS + 1)]
        if [call_id for call_id, _ in self.saved_after] != ids:
            found.append(f"thread results {[c for c, _ in self.saved_after]} instead of step1..step{STEPS}")
        if self.saved_after[: len(self.saved_at_kill)] != self.saved_at_kill:
            found.append("results saved before the kill were changed or lost")
        if self.log_after[: len(self.log_at_kill)] != self.log_at_kill or set(self.log_after) != {
            str(n) for n in range(1, STEPS + 1)
        }:
            found.append(f"log {self.log_after} after {self.log_at_kill} at the kill")
        redone = [step for step, runs in Counter(self.log_after).items() if runs > 1]
        in_flight = str(len(self.saved_at_kill) + 1)
        if redone not in ([], [in_flight]) or Counter(self.log_after)[in_flight] > 2:
            found.append(f"redone steps {redone}; only step {in_flight} (in flight) may be")
        return found

    def summary(self) -> str:
        saved = len(self.saved_at_kill)
        return f"kill at +{self.delay:.2f}s: {saved} results saved, log {len(self.log_at_kill)} lines"


def kill_and_resume(root: Path, delay: float) -> CrashReport:
    """Start an 8-step run, SIGKILL it `delay` seconds after its first model request, resume it."""
    with CountingServer() as server:
        workspace = Workspace.create(root, server.url)
        process = workspace.start("-m", MODEL, TASK)
        deadline = time.monotonic() + 120
        while not server.requests and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        thread_id = only_thread(workspace)
        log_at_kill, saved_at_kill = read_log(workspace), saved_results(workspace, thread_id)
        resume = workspace.run("resume", thread_id, "--continue")
        return CrashReport(
            delay, process.returncode, log_at_kill, saved_at_kill, resume,
            read_log(workspace), saved_results(workspace, thread_id),
        )  # fmt: skip


def kill_points(count: int, seed: int = SEED) -> list[float]:
    """Seeded random delays covering a whole run."""
    rng = random.Random(seed)
    return [round(rng.uniform(0.0, RUN_SECONDS), 3) for _ in range(count)]


def kill_many(root: Path, delays: list[float], parallel: int = 2) -> list[CrashReport]:
    """`kill_and_resume` for each delay, `parallel` runs at a time (each process imports litellm: ~5 s)."""
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(lambda i: kill_and_resume(root / f"run{i}", delays[i]), range(len(delays))))


# ---- one writer per thread --------------------------------------------------------------------------------


class GatedServer(ScriptedLLMServer):
    """A scripted server whose `delay` answers wait until the test opens the gate."""

    def __init__(self, *responses: dict) -> None:
        super().__init__(*responses)
        self.gate = threading.Event()

    def wait(self, seconds: float) -> None:
        self.gate.wait(seconds)


def wait_for_requests(
    server: ScriptedLLMServer, count: int, process: subprocess.Popen[str], timeout: float = 60
) -> None:
    """Wait until `server` has received `count` requests (the process is then waiting on the model)."""
    deadline = time.monotonic() + timeout
    while len(server.requests) < count and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process ended early: {process.communicate()}")
        time.sleep(0.02)
    if len(server.requests) < count:
        raise RuntimeError("the process never called the model")


def seeded(root: Path, server: ScriptedLLMServer) -> tuple[Workspace, str]:
    """A workspace with one thread of one finished turn."""
    workspace = Workspace.create(root, server.url)
    server.push(script.text("first answer"))
    done = workspace.run("-m", MODEL, "first task")
    if done.returncode != 0:
        raise RuntimeError(f"the first turn failed: {done.stderr}")
    return workspace, only_thread(workspace)


# ---- a locked database -------------------------------------------------------------------------------------


def create_database(database: Path) -> None:
    """The tables a first run creates, made in this process."""

    async def open_once() -> None:
        async with open_session(database):
            pass

    asyncio.run(open_once())


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


# ---- a full disk -------------------------------------------------------------------------------------------

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
