"""Fault bench rows for one writer per thread ("concurrency"), a model server that goes quiet ("hangs") and
bad inputs ("bad input"), against real `ml-intern` processes. Alone: `python bench/faults_hangs.py`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from fault_rows import Row  # noqa: E402

from tests.fakes import llm_server as script  # noqa: E402
from tests.fakes.llm_server import ScriptedLLMServer  # noqa: E402
from tests.harness import installed_cli  # noqa: E402
from tests.harness_cli import MODEL, QUICK_RETRIES, Workspace, error_lines  # noqa: E402
from tests.harness_crashes import GatedServer, seeded, wait_for_requests  # noqa: E402

IDLE = 5.0  # stream_idle_timeout of the hang scenarios, seconds (a cold first call spends ~1 s in litellm)
UNREACHABLE = "http://127.0.0.1:9/v1"


def one_line(done: subprocess.CompletedProcess) -> str:
    """The single error line of a run ('' when there is not exactly one, or a traceback)."""
    lines = error_lines(done.stderr if isinstance(done.stderr, str) else done.stderr.decode())
    clean = "Traceback" not in str(done.stderr) and "internal error" not in str(done.stderr)
    return lines[0].removeprefix("ml-intern: error: ") if len(lines) == 1 and clean else ""


# ---- concurrency -------------------------------------------------------------------------------------------


def busy_thread(root: Path) -> list[Row]:
    """While one `resume` waits on the model: a second `resume` and an `undo` of the same thread."""
    with GatedServer() as server:
        workspace, thread = seeded(root, server)
        server.push(script.delay(120, script.text("slow answer")))
        first = workspace.start("resume", thread, "slow task")
        wait_for_requests(server, 2, first)
        second, undo = workspace.run("resume", thread, "second task"), workspace.run("undo", thread)
        server.gate.set()
        first.communicate(timeout=60)
        server.push(script.text("second answer"))
        after = workspace.run("resume", thread, "second task")
    names = f"pid {first.pid}"
    rows = []
    for fault, done in (("a second `resume` of a busy thread", second), ("`undo` of a busy thread", undo)):
        line = one_line(done)
        ok = done.returncode == 2 and names in line and "running a turn" in line
        rows.append(
            Row(fault, "one line naming the other process, exit 2", f"exit {done.returncode}: {line}", ok)
        )
    turns = workspace.thread_rows()[0]["turns"]
    ok = first.returncode == 0 and after.returncode == 0 and turns == 3
    observed = f"first exit {first.returncode}, later resume exit {after.returncode}, {turns} turns saved"
    rows.append(Row("the same `resume` once the thread is free", "runs; every turn saved once", observed, ok))
    return rows


def at_once(workspace: Workspace, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: workspace.run(*args), commands))


def two_undos(root: Path, tries: int = 3) -> list[Row]:
    """Two `undo`s of one two-turn thread at once, `tries` times."""
    outcomes, broken = [], []
    for attempt in range(tries):
        with ScriptedLLMServer() as server:
            workspace, thread = seeded(root / f"try{attempt}", server)
            server.push(script.text("second answer"))
            workspace.run("resume", thread, "second task")
        runs = at_once(workspace, ["undo", thread], ["undo", thread])
        undone = sum(run.returncode == 0 for run in runs)
        refused = sum(run.returncode == 2 and "is busy" in one_line(run) for run in runs)
        turns, title = (workspace.thread_rows()[0][key] for key in ("turns", "title"))
        outcomes.append(f"{undone} undone/{refused} refused")
        if undone + refused != 2 or turns != 2 - undone or bool(title) != bool(turns):
            broken.append(f"try {attempt}: {turns} turns, title {title!r}")
    observed = f"{', '.join(outcomes)}; {'; '.join(broken) or 'turn count and title right every time'}"
    expected = "never one turn twice: one refused, or one after the other"
    return [Row("two `undo`s of one thread at once", expected, observed, not broken)]


def killed_holder(root: Path) -> list[Row]:
    with GatedServer() as server:
        workspace, thread = seeded(root, server)
        server.push(script.delay(120, script.text("never sent")))
        holder = workspace.start("resume", thread, "slow task")
        wait_for_requests(server, 2, holder)
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
        server.gate.set()
        server.push(script.text("after the kill"))
        done = workspace.run("resume", thread, "again")
    ok = done.returncode == 0 and done.stdout.strip() == "after the kill"
    observed = f"next resume exit {done.returncode}{': ' + one_line(done) if done.returncode else ''}"
    expected = "no stale lock: the next resume runs"
    return [Row("the thread's holder killed with kill -9", expected, observed, ok)]


# ---- hangs -------------------------------------------------------------------------------------------------


def quiet_run(root: Path, responses: list[dict]) -> tuple[subprocess.CompletedProcess, float, int]:
    """A stream-json run with stream_idle_timeout IDLE: (process, seconds from its first model request to
    its end, requests)."""
    config = {"retries": QUICK_RETRIES, "stream_idle_timeout": IDLE}
    with ScriptedLLMServer(*responses) as server:
        server.allow_leftovers = True
        workspace = Workspace.create(root, server.url, config=config)
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", "hi")
        first = server.request_times[0] if server.request_times else time.monotonic()
        return done, time.monotonic() - first, len(server.requests)


def hangs(root: Path) -> list[Row]:
    stalled, seconds, requests = quiet_run(root / "stall", [script.stall_after_headers(600)] * 3)
    line = one_line(stalled)
    tries = QUICK_RETRIES["attempts"] + 1
    ok = stalled.returncode == 1 and "stream_idle_timeout" in line and seconds < tries * (IDLE + 2) + 5
    rows = [Row(
        f"model server sends headers, then nothing (idle timeout {IDLE:g} s, 2 retries)",
        "each try cut after the idle timeout, then one line, exit 1 (was: 600 s per try)",
        f"exit {stalled.returncode} {seconds:.1f} s after the 1st request, {requests} requests: {line[:90]}",
        ok, "hangs",
    )]  # fmt: skip
    answer = script.text("The answer is 42.")
    cut = script.stall_after_headers(600, "The ans")
    recovered, seconds, requests = quiet_run(root / "mid", [cut, answer])
    final = [json.loads(x)["final_response"] for x in recovered.stdout.splitlines() if "turn_complete" in x]
    ok = recovered.returncode == 0 and requests == 2 and final == [answer["content"]]
    rows.append(Row(
        "a streamed reply stops mid-way, the retry answers", "retried after the idle timeout, exit 0",
        f"exit {recovered.returncode} {seconds:.1f} s after the first request, {requests} requests",
        ok, "hangs",
    ))  # fmt: skip
    steady, seconds, _ = quiet_run(root / "steady", [script.delay(IDLE * 0.4, answer)])
    retries = steady.stdout.count('"tool": "model"')
    rows.append(Row(
        f"a reply that starts after {IDLE * 0.4:g} s (under the idle timeout)", "not cut (no retry), exit 0",
        f"exit {steady.returncode}, {retries} retries", steady.returncode == 0 and not retries, "hangs",
    ))  # fmt: skip
    return rows


# ---- bad input ---------------------------------------------------------------------------------------------

PORTAL = "<!DOCTYPE html><html><body><h1>Sign in to the guest Wi-Fi</h1></body></html>"
NULL_MESSAGE = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "scripted",
                           "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]})  # fmt: skip


def bad_file(root: Path, name: str, write: Callable[[Workspace], None]) -> subprocess.CompletedProcess:
    workspace = Workspace.create(root / name, UNREACHABLE)
    write(workspace)
    return workspace.run("-m", MODEL, "hi")


def model_answer(root: Path, body: str, kind: str, *args: str) -> subprocess.CompletedProcess:
    with ScriptedLLMServer(*[script.raw_body(body, kind)] * 8) as server:  # a streamed try asks twice
        server.allow_leftovers = True
        return Workspace.create(root, server.url).run("-m", MODEL, *args, "hi")


def stdin_bytes(root: Path) -> tuple[subprocess.CompletedProcess, str]:
    with ScriptedLLMServer(script.text("done")) as server:
        workspace = Workspace.create(root, server.url)
        done = subprocess.run(
            [str(installed_cli()), "-m", MODEL, "-"], env=workspace.env, cwd=workspace.workdir,
            input=b"summarise caf\xe9 notes", capture_output=True, timeout=120, text=False,
        )  # fmt: skip
        sent = server.requests[0]["messages"][-1]["content"] if server.requests else ""
    return done, sent


def bad_inputs(root: Path) -> list[Row]:
    rows = []
    damaged = bad_file(root, "damaged", lambda ws: ws.database.write_bytes(b"garbage " * 500))
    line = one_line(damaged)
    ok = damaged.returncode == 1 and "sqlite is not a readable database" in line and "move it aside" in line
    rows.append(Row("checkpoints.sqlite full of garbage", "one line naming the file and what to do",
                    f"exit {damaged.returncode}: {line[-110:]}", ok, "bad input"))  # fmt: skip
    dotenv = bad_file(root, "dotenv", lambda ws: (ws.workdir / ".env").write_bytes(b"A=caf\xe9\n"))
    line = one_line(dotenv)
    ok = dotenv.returncode == 2 and ".env is not UTF-8 (byte 0xe9 on line 1)" in line
    rows.append(Row(".env with a byte that is not UTF-8", "one line naming the file and the byte, exit 2",
                    f"exit {dotenv.returncode}: {line[-80:]}", ok, "bad input"))  # fmt: skip
    for fmt in ("text", "stream-json"):
        html = model_answer(root / f"html-{fmt}", PORTAL, "text/html", "--output-format", fmt)
        line = one_line(html)
        ok = html.returncode == 2 and "answered with HTML, not an API response; check the base URL" in line
        rows.append(Row(f"HTTP 200 with an HTML page ({fmt})", "one line: HTML, not an API response",
                        f"exit {html.returncode}: {line[-90:]}", ok, "bad input"))  # fmt: skip
    null = model_answer(root / "null", NULL_MESSAGE, "application/json")
    line = one_line(null)
    ok = null.returncode == 1 and "without a message (message: null)" in line and "Traceback" not in line
    rows.append(Row("a reply with message: null", "retried, then one line naming it",
                    f"exit {null.returncode}: {line[-100:]}", ok, "bad input"))  # fmt: skip
    done, sent = stdin_bytes(root / "stdin")
    warned = b"stdin is not UTF-8" in done.stderr
    ok = done.returncode == 0 and warned and sent == "summarise caf\ufffd notes"
    rows.append(Row("a stdin prompt with a byte that is not UTF-8", "runs, the byte replaced, with a warning",
                    f"exit {done.returncode}, warned: {warned}, sent {sent!r}", ok, "bad input"))  # fmt: skip
    return rows + usage_errors(root)


def usage_errors(root: Path) -> list[Row]:
    rows = []
    for name, args in (("empty prompt", ["  "]), ("chat without a terminal", [])):
        workspace = Workspace.create(root / name.replace(" ", "-"), UNREACHABLE)
        workspace.ml_intern_home.rmdir()
        done = workspace.run("-m", MODEL, *args)
        made = workspace.ml_intern_home.exists()
        ok = done.returncode == 2 and bool(one_line(done)) and not made
        rows.append(Row(f"usage error: {name}", "one line, exit 2, ML_INTERN_HOME not created",
                        f"exit {done.returncode}, home created: {made}", ok, "bad input"))  # fmt: skip
    return rows


# ---- all ---------------------------------------------------------------------------------------------------


def concurrency(root: Path) -> list[Row]:
    rows = busy_thread(root / "busy") + two_undos(root / "undos") + killed_holder(root / "killed")
    return [Row(r.fault, r.expected, r.observed, r.ok, "concurrency") for r in rows]


def scenarios(root: Path) -> list[Row]:
    """Every row of this module; the three groups run side by side."""
    groups = {"concurrency": concurrency, "hangs": hangs, "bad-input": bad_inputs}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(run, root / name) for name, run in groups.items()]
        return [row for future in futures for row in future.result()]


if __name__ == "__main__":
    for row in scenarios(Path(tempfile.mkdtemp(prefix="ml-intern-hangs-"))):
        print(f"| {row.category} | {row.fault} | {row.observed} | {'PASS' if row.ok else 'FAIL'} |")
