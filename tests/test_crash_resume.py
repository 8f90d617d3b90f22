"""`kill -9` at a random moment of a multi-step headless run, then `ml-intern resume THREAD --continue`:
the run finishes, every tool result saved before the kill is kept, and at most the step in flight is redone.

`bench/faults.py` runs the same check with 20 random kill points; the suite runs 3 (seeded).
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.test_faults import MODEL, Workspace

STEPS = 8
STEP_COMMAND = "sleep 0.2; echo {n} >> log"
FINAL = f"all {STEPS} steps done"
RUN_SECONDS = 1.8  # an uninterrupted run lasts ~2 s after its first model request: kill within it
SEED = 20260611


class CountingServer(ScriptedLLMServer):
    """A model that derives its answer from the request: call step n+1 after n tool results, then finish.

    A fixed script cannot survive a kill: the killed process may have consumed an answer it never saved."""

    def __init__(self, steps: int = STEPS, command: str = STEP_COMMAND, latency: float = 0.02) -> None:
        super().__init__()
        self.steps, self.command, self.latency = steps, command, latency

    def take(self, body: Any) -> tuple[int, dict | None]:
        with self._lock:
            self.requests.append(body)
            self.request_times.append(time.monotonic())
            number = len(self.requests)
        done = sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
        if done >= self.steps:
            return number, script.text(FINAL)
        call = script.tool_call("bash", {"command": self.command.format(n=done + 1)}, id=f"step{done + 1}")
        return number, script.delay(self.latency, call)


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


def read_log(workspace: Workspace) -> list[str]:
    log = workspace.workdir / "log"
    return log.read_text().split() if log.exists() else []


def saved_results(workspace: Workspace, thread_id: str) -> list[tuple[str, str]]:
    """(call id, content) of the thread's tool results, read as a fresh process would."""
    messages = asyncio.run(workspace.messages(thread_id))
    return [(m.tool_call_id, str(m.content)) for m in messages if isinstance(m, ToolMessage)]


def only_thread(workspace: Workspace) -> str:
    with sqlite3.connect(workspace.database) as conn:
        [(thread_id,)] = conn.execute("SELECT thread_id FROM ml_intern_threads").fetchall()
    return thread_id


def kill_and_resume(root: Path, delay: float) -> CrashReport:
    """Start an 8-step run, SIGKILL it `delay` seconds after its first model request, resume it."""
    with CountingServer() as server:
        workspace = Workspace.create(root, server.url)
        process = workspace.start("-m", MODEL, f"append the numbers 1 to {STEPS} to log, one bash call each")
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


@pytest.fixture(scope="module")
def crash_reports(tmp_path_factory: pytest.TempPathFactory) -> list[CrashReport]:
    return kill_many(tmp_path_factory.mktemp("crashes"), kill_points(3))


@pytest.mark.parametrize("index", range(3))
def test_kill_9_then_resume_continue_finishes_and_keeps_saved_results(
    crash_reports: list[CrashReport], index: int
) -> None:
    report = crash_reports[index]
    assert report.killed_code == -signal.SIGKILL, f"not killed: {report.summary()}"
    assert report.problems() == [], report.summary()


def test_kill_points_spread_over_the_run(crash_reports: list[CrashReport]) -> None:
    """The seeded kills hit different moments: not all before the first result, not all after the last."""
    saved = {len(report.saved_at_kill) for report in crash_reports}
    assert len(saved) > 1 and max(saved) < STEPS, [r.summary() for r in crash_reports]
