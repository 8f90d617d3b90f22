"""Fault injection: each reliability and security scenario run against real `ml-intern` processes and a
scripted local model server; prints a table of fault, expected behaviour, observed behaviour, pass.

    python bench/faults.py              # every scenario, 20 kill -9 runs (~7 minutes on 2 CPUs)
    python bench/faults.py --kills 5    # fewer kill -9 runs

Exits 1 when any scenario does not behave as expected. The trust scenarios (bench/faults_*.py) also print a
summary of cases tried and held per category: boundary escapes, undo attribution, secrets on disk,
concurrency, hangs, bad input. The scenarios and their checks mirror
tests/test_faults.py, test_crash_resume.py, test_concurrency.py and test_secrets.py; the scenarios live
in tests/harness_*.py, which both use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before anything imports litellm

import faults_approval  # noqa: E402  (bench/ is on sys.path: this script's folder)
import faults_boundary  # noqa: E402
import faults_hangs  # noqa: E402
import faults_secrets  # noqa: E402
import faults_undo  # noqa: E402
from fault_rows import Row  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402

from tests import harness_crashes as crash  # noqa: E402
from tests import harness_secrets as sec  # noqa: E402
from tests.fakes import llm_server as script  # noqa: E402
from tests.fakes.counting_server import ALL_STEPS, STEPS, TASK, CountingServer  # noqa: E402
from tests.fakes.llm_server import ScriptedLLMServer  # noqa: E402
from tests.fakes.resetting_proxy import ResettingProxy  # noqa: E402
from tests.harness import Sandbox  # noqa: E402
from tests.harness_cli import (  # noqa: E402
    MODEL,
    QUICK_RETRIES,
    Workspace,
    database_check,
    error_lines,
    saved_results,
)
from tests.harness_litellm import CONTEXT_OVERFLOW, agent_config, run_real_turn, unanswered_calls  # noqa: E402


@dataclass
class Run:
    """A finished stream-json run: the process, its events and what the model server received."""

    done: Any  # subprocess.CompletedProcess
    events: list[dict[str, Any]]
    noise: list[str]  # stdout lines that were not JSON
    requests: list[Any]
    gaps: list[float]  # seconds between consecutive model requests
    workspace: Workspace

    @property
    def retries(self) -> int:
        return sum(1 for e in self.events if e["type"] == "tool_log" and e.get("tool") == "model")

    @property
    def stop(self) -> str | None:
        return next((e["stop_reason"] for e in self.events if e["type"] == "turn_complete"), None)

    @property
    def final(self) -> str:
        return next((e["final_response"] for e in self.events if e["type"] == "turn_complete"), "")

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e["type"] == kind)

    def summary(self) -> str:
        lines = error_lines(self.done.stderr)
        error = f", error: {lines[0][18:110]}" if lines else ""
        noise = f", {len(self.noise)} non-JSON stdout lines" if self.noise else ""
        return (
            f"exit {self.done.returncode}, {len(self.requests)} requests, {self.retries} retry events, "
            f"stop {self.stop}{error}{noise}"
        )


def parse_events(stdout: str) -> tuple[list[dict[str, Any]], list[str]]:
    events, noise = [], []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            noise += [line] if line.strip() else []
    return events, noise


def cli(
    root: Path,
    responses: list[dict],
    *args: str,
    config: dict | None = None,
    server: Any = None,
    url: str = "",
) -> Run:
    """`ml-intern -m vllm/scripted --output-format stream-json ARGS` against `server` (default: a new one
    playing `responses`), reached at `url` (default: the server's)."""
    with ScriptedLLMServer(*responses) as own:
        server = server or own
        workspace = Workspace.create(root, url or server.url, config=config)
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", *args)
        gaps = [b - a for a, b in zip(server.request_times, server.request_times[1:], strict=False)]
        return Run(done, *parse_events(done.stdout), list(server.requests), gaps, workspace)


def last_tool_text(run: Run, request: int) -> str:
    messages = run.requests[request]["messages"] if len(run.requests) > request else []
    return next((m["content"] for m in reversed(messages) if m["role"] == "tool"), "")


# ---- model and provider faults -----------------------------------------------------------------------------

RETRIED = "retried once after backoff, shown as a tool_log event, exit 0"
MIN_WAIT = {"HTTP 429, Retry-After: 0.4": 0.4}  # seconds before the retry


def transient_faults(root: Path) -> list[Row]:
    answer = script.text("The answer is 42.")
    five = {"retries": {**QUICK_RETRIES, "attempts": 3}}
    runs = {
        "HTTP 429, Retry-After: 0.4": cli(
            root / "429", [script.error(429, "slow down", {"Retry-After": "0.4"}), answer], "hi"
        ),
        "HTTP 500, 502, 503 in a row": cli(
            root / "5xx", [script.error(s, "down") for s in (500, 502, 503)] + [answer], "hi", config=five
        ),
        "stream broken mid-response": cli(root / "broken", [script.broken_stream("The ans"), answer], "hi"),
        "response body cut off (no streaming)": cli(
            root / "cut", [script.broken_stream("The ans"), answer], "--no-stream", "hi"
        ),
    }
    expected = {"HTTP 500, 502, 503 in a row": 3}
    rows = []
    for fault, run in runs.items():
        retries = expected.get(fault, 1)
        waited = f", first wait {run.gaps[0]:.2f}s" if run.gaps else ""
        ok = run.done.returncode == 0 and run.retries == retries and len(run.requests) == retries + 1
        ok = ok and run.final == "The answer is 42." and (run.gaps or [0.0])[0] >= MIN_WAIT.get(fault, 0.0)
        what = RETRIED if retries == 1 else f"{retries} retries with backoff, each a tool_log event, exit 0"
        rows.append(Row(fault, what, run.summary() + waited, ok))
    return rows


def connection_faults(root: Path) -> list[Row]:
    with ScriptedLLMServer(script.text("after the reset")) as server:
        proxy = ResettingProxy(server.url, resets=1)
        reset = cli(root / "reset", [], "hi", server=server, url=proxy.url)
        proxy.close()
    refused = cli(root / "refused", [], "hi", url="http://127.0.0.1:9/v1")
    overloaded = cli(root / "overloaded", [script.error(503, "overloaded")] * 9, "hi")
    attempts = QUICK_RETRIES["attempts"]
    one_line = len(error_lines(refused.done.stderr)) == 1 and "cannot reach" in refused.done.stderr
    return [
        Row(
            "connection reset before the answer",
            RETRIED,
            f"{reset.summary()}, {proxy.connections} connections",
            reset.done.returncode == 0 and reset.retries == 1 and proxy.connections == 2,
        ),
        Row(
            "connection refused (nothing listening)",
            f"{attempts} retries logged, exit 1, one error line",
            refused.summary(),
            refused.done.returncode == 1 and refused.retries == attempts and one_line,
        ),
        Row(
            "HTTP 503 until retries run out",
            f"{attempts + 1} requests, exit 1, one error line, stdout JSON",
            overloaded.summary(),
            overloaded.done.returncode == 1
            and len(overloaded.requests) == attempts + 1
            and len(error_lines(overloaded.done.stderr)) == 1
            and not overloaded.noise,
        ),
    ]


def timeout_fault(root: Path) -> list[Row]:
    """In-process: `request_timeout` is not a config-file key, so the CLI cannot be given a short one."""
    sandbox = Sandbox.under(root)
    with ScriptedLLMServer(script.delay(3, script.text("too late")), script.text("on time")) as server:
        config = {**agent_config(), "request_timeout": 0.5}
        turn = asyncio.run(run_real_turn(server.url, sandbox, "hi", config=config))
        requests = len(server.requests)
    final = turn.outcome.final_response if turn.outcome else repr(turn.error)
    observed = f"{requests} requests, {len(turn.logs())} retry events, answer {final!r}"
    return [
        Row(
            "request timeout (0.5 s, in-process)",
            RETRIED,
            observed,
            final == "on time" and len(turn.logs()) == 1,
        )
    ]


PERMANENT = {401: "check its API key", 403: "permissions", 404: "was not found", 402: "credits"}


def permanent_faults(root: Path) -> list[Row]:
    from ml_intern.model.errors import explain_model_error

    rows = []
    for status, words in PERMANENT.items():
        sandbox = Sandbox.under(root / str(status))
        with ScriptedLLMServer(script.error(status, f"provider says {status}")) as server:
            turn = asyncio.run(run_real_turn(server.url, sandbox, "hi"))
            requests = len(server.requests)
        line, code = explain_model_error(turn.error, MODEL) if turn.error else ("no error", 0)
        rows.append(
            Row(
                f"HTTP {status} (in-process)",
                f"not retried, exit 2, the line says '{words}'",
                f"{requests} request(s), exit {code}: {line[:80]}",
                requests == 1 and code == 2 and words in line,
            )
        )
    run = cli(root / "cli401", [script.error(401, "Incorrect API key provided")], "hi")
    one = len(error_lines(run.done.stderr)) == 1 and "Traceback" not in run.done.stderr
    rows.append(
        Row(
            "HTTP 401 through the CLI",
            "exit 2, one error line, 1 request",
            run.summary(),
            run.done.returncode == 2 and one and len(run.requests) == 1,
        )
    )
    return rows


def context_faults(root: Path) -> list[Row]:
    config = {"retries": QUICK_RETRIES, "compaction": {"keep_recent_tokens": 10}}
    fixable = cli(
        root / "fixable",
        [
            script.tool_call("bash", {"command": "echo one"}),
            script.tool_call("bash", {"command": "echo two"}),
            script.error(400, CONTEXT_OVERFLOW),
            script.text("- ran echo one and two"),
            script.tool_call("bash", {"command": "touch after_compaction"}),
            script.text("done"),
        ],
        "run two echos",
        config=config,
    )
    stuck = cli(root / "stuck", [script.error(400, CONTEXT_OVERFLOW)], "a prompt too long for the model")
    retried = (fixable.workspace.workdir / "after_compaction").exists()
    return [
        Row(
            "context window exceeded",
            "compact, retry the same step, finish (exit 0)",
            f"{fixable.summary()}, {fixable.count('compacted')} compaction, retried step ran: {retried}",
            fixable.done.returncode == 0 and fixable.count("compacted") == 1 and retried,
        ),
        Row(
            "context exceeded, nothing to compact",
            "stop context_overflow after 1 request, exit 1",
            stuck.summary(),
            stuck.stop == "context_overflow" and len(stuck.requests) == 1 and stuck.done.returncode == 1,
        ),
    ]


# ---- broken replies ----------------------------------------------------------------------------------------


def broken_tool_calls(root: Path) -> list[Row]:
    malformed = [
        script.raw_tool_call("bash", '{"command": "touch made_first', id="m1"),
        script.raw_tool_call("bash", '{"command": "touch made_second"', id="m2"),
        script.text("I will send smaller calls."),
    ]
    rows = []
    for mode, args in (("whole reply", ["--no-stream"]), ("streamed reply", [])):
        run = cli(root / mode.split()[0], malformed, *args, "make files")
        made = sorted(p.name for p in run.workspace.workdir.glob("made_*"))
        told = "not valid JSON" in last_tool_text(run, 1) and "change strategy" in last_tool_text(run, 2)
        rows.append(
            Row(
                f"malformed tool-call JSON, {mode}",
                "not run; told to retry smaller; 2nd: change strategy",
                f"ran {made or 'nothing'}, model told: {told}",
                not made and told,
            )
        )
    cut = script.tool_calls(
        [("bash", {"command": "touch cut_one"}), ("write", {"path": "big.txt", "content": "x" * 40})],
        finish_reason="length",
    )
    run = cli(root / "length", [cut, script.text("I will split it.")], "write it")
    ran = sorted(p.name for p in run.workspace.workdir.iterdir())
    told = [m["content"][:20] for m in run.requests[1]["messages"][-2:]] if len(run.requests) > 1 else []
    rows.append(
        Row(
            "finish_reason length with tool calls (streamed)",
            "calls dropped, model told which were cut",
            f"ran {ran or 'nothing'}, results {told}",
            not ran and all(t.startswith("Not executed") for t in told) and len(told) == 2,
        )
    )
    return rows


async def seed_dangling_thread(workspace: Workspace, thread_id: str) -> None:
    """A thread edited by hand: two of its three tool calls never got results."""
    from langgraph.types import Overwrite

    from ml_intern.session.session import open_session

    call = {"name": "bash", "type": "tool_call"}
    messages = [
        HumanMessage("first", id="h1"),
        AIMessage(
            "",
            id="a1",
            tool_calls=[
                {**call, "args": {"command": "echo x"}, "id": "d1"},
                {**call, "args": {"command": "echo y"}, "id": "d2"},
            ],
        ),
        ToolMessage("x", tool_call_id="d1", name="bash", id="r1"),
        AIMessage("", id="a2", tool_calls=[{**call, "args": {"command": "echo z"}, "id": "d3"}]),
        AIMessage("first answer", id="a3"),
    ]
    async with open_session(workspace.database) as session:
        await session.threads.start_turn(thread_id, "first", MODEL, str(workspace.workdir))
        update = {"messages": Overwrite(messages), "stop_reason": "end_turn"}
        await session.app.aupdate_state(
            {"configurable": {"thread_id": thread_id}}, update, as_node="call_model"
        )


def dangling_calls(root: Path) -> list[Row]:
    with ScriptedLLMServer(script.text("second answer")) as server:
        workspace = Workspace.create(root, server.url)
        asyncio.run(seed_dangling_thread(workspace, "da9911n90001"))
        done = workspace.run("resume", "da9911n90001", "second")
        request = server.requests[0] if server.requests else {"messages": []}
    missing = unanswered_calls(request)
    return [
        Row(
            "dangling tool calls in history (hand-edited)",
            "answered 'not executed' before the model call",
            f"exit {done.returncode}, unanswered in the request: {missing or 'none'}",
            done.returncode == 0 and not missing and bool(request["messages"]),
        )
    ]


def stalls_and_loops(root: Path) -> list[Row]:
    todos = [{"id": "1", "content": "train", "status": "in_progress"}]
    empty = cli(root / "empty", [script.text(""), script.text("")], "answer me")
    same = cli(
        root / "same",
        [script.tool_call("plan_tool", {"todos": todos}), *[script.text("Working on it.")] * 4],
        "train",
    )
    repeat = script.tool_call("bash", {"command": "echo run >> runs.log; echo same"})
    loop = cli(root / "loop", [repeat] * 6, "check it")
    runs_log = loop.workspace.workdir / "runs.log"
    executed = runs_log.read_text().count("run") if runs_log.exists() else 0
    return [
        Row(
            "empty reply",
            "nudged once, then stop 'stalled'",
            empty.summary(),
            empty.stop == "stalled" and len(empty.requests) == 2,
        ),
        Row(
            "same text three times",
            "nudged once, then stop 'stalled'",
            same.summary(),
            same.stop == "stalled" and len(same.requests) == 5,
        ),
        Row(
            "identical calls, identical results",
            "blocked after 3, 2 guards, stop doom_loop, exit 3",
            f"{loop.summary()}, executed {executed}",
            loop.stop == "doom_loop" and loop.done.returncode == 3 and executed == 3,
        ),
    ]


# ---- crashes, concurrency, storage -----------------------------------------------------------------------


def crashes(root: Path, kills: int) -> list[Row]:
    reports = crash.kill_many(root, crash.kill_points(kills), parallel=3)
    failed = [
        f"{r.summary()}: {r.problems() or 'not killed'}"
        for r in reports
        if r.problems() or r.killed_code != -9
    ]
    saved = sorted(len(r.saved_at_kill) for r in reports)
    redone = sum(1 for r in reports if len(r.log_after) > STEPS)
    observed = (
        f"{kills - len(failed)}/{kills} held; results saved at the kill: {saved}; "
        f"{redone} redid the step in flight"
    ) + (f"; FAILED: {failed}" if failed else "")
    return [
        Row(
            f"kill -9 at {kills} random moments of an 8-step run, then resume --continue",
            "finishes; results saved before the kill kept; at most the step in flight redone",
            observed,
            not failed,
        )
    ]


def two_processes(root: Path) -> list[Row]:
    shared = root / "shared-home"
    with CountingServer() as server:
        workspaces = [Workspace.create(root / n, server.url, home=shared) for n in ("a", "b")]
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(pool.map(lambda ws: ws.run("-m", MODEL, TASK), workspaces))
    check = database_check(shared / "checkpoints.sqlite")
    rows = workspaces[0].thread_rows()
    complete = all([c for c, _ in saved_results(workspaces[0], r["thread_id"])] == ALL_STEPS for r in rows)
    codes = [run.returncode for run in runs]
    ok = codes == [0, 0] and check == ("ok", "wal") and len(rows) == 2 and complete
    observed = f"exit codes {codes}, integrity/journal {check}, {len(rows)} threads, all results: {complete}"
    return [Row("two processes on one ML_INTERN_HOME", "both finish, database consistent", observed, ok)]


def locked_database(root: Path) -> list[Row]:
    runs = crash.run_locked_pair(root)
    waited, held = runs["released"], runs["held"]
    lines = [line for line in held.done.stderr.splitlines() if "error" in line]
    clear = len(lines) == 1 and "locked" in lines[0] and "model call failed" not in lines[0]
    return [
        Row(
            "database locked for 20 s by another writer",
            "waits (busy timeout), then finishes",
            f"exit {waited.done.returncode} after {waited.seconds:.0f}s",
            waited.done.returncode == 0,
        ),
        Row(
            "database locked past the 30 s busy timeout",
            "one clear line naming the database, no thread saved",
            f"exit {held.done.returncode} after {held.seconds:.0f}s, {len(lines)} error line(s): "
            f"{lines[-1][:110] if lines else '-'}; threads saved: {len(held.workspace.thread_rows())}",
            clear and not held.workspace.thread_rows(),
        ),
    ]


def disk_full(root: Path) -> list[Row]:
    run = crash.fill_disk_then_resume(root)
    if run is None:
        return [Row("disk full (tmpfs)", "-", "not run: mounting a tmpfs needs root", False)]
    lines = [line for line in run.done.stderr.splitlines() if "error" in line.lower()]
    lost = len(run.log_at_failure) - len(run.saved_at_failure)
    calls = [c for c, _ in run.saved_after]
    return [
        Row(
            "disk full (ML_INTERN_HOME on a 200 KB tmpfs)",
            "one clear error line, no traceback",
            f"exit {run.done.returncode}, {len(lines)} error lines, traceback: "
            f"{'Traceback' in run.done.stderr}; {lines[-1][:100] if lines else '-'}",
            len(lines) == 1 and "Traceback" not in run.done.stderr and "model call failed" not in lines[0],
        ),
        Row(
            "disk full: work after the failed write",
            "the run stops: at most the step in flight unsaved",
            f"{len(run.log_at_failure)} steps ran, {len(run.saved_at_failure)} results saved",
            lost <= 1,
        ),
        Row(
            "disk full, then space freed: resume --continue",
            "finishes with every call answered once",
            f"resume exit {run.resume.returncode}, integrity {run.integrity}, results {calls}",
            run.resume.returncode == 0 and calls == ALL_STEPS,
        ),
    ]


# ---- security ----------------------------------------------------------------------------------------------


def exported_traces(run: Any) -> list[str]:
    """The thread exported as JSONL and JSON, as a trace upload would send it."""
    from ml_intern.session.export import export_thread
    from ml_intern.session.session import open_session

    async def export(fmt: str) -> str:
        async with open_session(run.workspace.database) as session:
            return await export_thread(session, run.thread_id, fmt, run.workspace.env)

    return [asyncio.run(export(fmt)) for fmt in ("jsonl", "json")]


def other_files(run: Any) -> list[bytes]:
    """Files under ML_INTERN_HOME other than the database and the spill files (logs, snapshots...)."""
    home = run.workspace.ml_intern_home
    return [
        p.read_bytes()
        for p in home.rglob("*")
        if p.is_file() and "outputs" not in p.relative_to(home).parts and not p.name.startswith("checkpoints")
    ]


def streamed_text(run: Any) -> list[str]:
    events, _ = parse_events(run.done.stdout)
    return ["".join(e.get("content", "") for e in events if e.get("type") == "assistant_chunk")]


SECRET_SURFACES: dict[str, Callable[[Any], list[Any]]] = {
    "thread titles (ml_intern_threads)": lambda run: [r["title"] for r in run.workspace.thread_rows()],
    "checkpoints (decompressed blobs)": lambda run: sec.stored_values(
        run.workspace.database, ("checkpoints", "writes")
    ),
    "database files (.sqlite, -wal, -shm)": lambda run: [
        p.read_bytes() for p in sec.database_files(run.workspace)
    ],
    "bash spill files (outputs/)": lambda run: [
        p.read_bytes() for p in (run.workspace.ml_intern_home / "outputs").iterdir()
    ],
    "other files under ML_INTERN_HOME": other_files,
    "stdout/stderr (text, json, stream-json)": lambda run: [run.done.stdout, run.done.stderr],
    "stream-json assistant_chunk text": streamed_text,
    "exported traces (jsonl, json)": exported_traces,
}


def secret_leaks(root: Path) -> list[Row]:
    jobs = {fmt: lambda path, fmt=fmt: sec.run_scenario(path, fmt) for fmt in sec.FORMATS}
    jobs["error"] = sec.fail_with_secret_error
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job, root / name) for name, job in jobs.items()}
        runs = {name: future.result() for name, future in futures.items()}
    error = runs.pop("error")
    rows = []
    for surface, read in SECRET_SURFACES.items():
        names = sorted({name for run in runs.values() for data in read(run) for name in sec.leaks(data)})
        rows.append(Row(f"secrets -> {surface}", "no secret", f"leaked: {names or 'nothing'}", not names))
    failed = {
        "error line and stream-json error event": [error.done.stdout, error.done.stderr],
        "checkpoints after the failed call": SECRET_SURFACES["checkpoints (decompressed blobs)"](error),
    }
    for surface, data in failed.items():
        names = sorted({name for item in data for name in sec.leaks(item)})
        observed = f"exit {error.done.returncode}, leaked: {names or 'nothing'}"
        rows.append(Row(f"secrets, 401 echoing the key -> {surface}", "no secret", observed, not names))
    return rows


def destructive_commands(root: Path) -> list[Row]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        deny, ask = pool.map(lambda m: sec.run_destructive(root / m, m), ("deny", "ask"))
    ask_events, _ = parse_events(ask.done.stdout)
    ask_stop = next((e["stop_reason"] for e in ask_events if e["type"] == "turn_complete"), None)
    kinds = sorted({e["type"] for e in ask_events} - {"thread_started", "processing", "shutdown"})
    safe_ran = (deny.workspace.workdir / "ran_safe").exists()
    return [
        Row(
            "rm -rf /abs, rm -rf ~, git push --force, sudo, >> ~/.bashrc, curl (custom pattern), "
            "--approval deny",
            "rejected, not run; the workdir-only command runs",
            f"changed: {sec.untouched(deny) or 'nothing'}; safe command ran: {safe_ran}",
            not sec.untouched(deny) and safe_ran,
        ),
        Row(
            "the same under --approval ask (headless)",
            "stop approval_required before anything runs, stream-json event approval_required",
            f"stop {ask_stop}, changed: {sec.untouched(ask) or 'nothing'}, events {kinds}",
            ask_stop == "approval_required" and not sec.untouched(ask) and "approval_required" in kinds,
        ),
    ]


# ---- report ------------------------------------------------------------------------------------------------


DURATIONS: dict[str, float] = {}  # seconds each scenario took


def guarded(name: str, scenario: Callable[[Path], list[Row]], root: Path) -> list[Row]:
    """A scenario's rows, run in its own directory and timed; one failing row if the scenario crashed."""
    started = time.monotonic()
    (root / name).mkdir(parents=True, exist_ok=True)
    try:
        return scenario(root / name)
    except Exception as exc:  # the table must still print
        return [Row(name, "-", f"scenario crashed: {type(exc).__name__}: {exc}"[:300], False)]
    finally:
        DURATIONS[name] = time.monotonic() - started


def print_table(rows: list[Row]) -> None:
    print("| fault | expected | observed | pass |")
    print("|---|---|---|---|")
    for row in rows:
        cells = (row.fault, row.expected, row.observed.replace("|", "/"), "PASS" if row.ok else "FAIL")
        print("| " + " | ".join(cells) + " |")
    print(f"\n{sum(r.ok for r in rows)}/{len(rows)} passed")
    categories = dict.fromkeys(row.category for row in rows if row.category)
    if categories:
        print("\n| category | cases tried | held |\n|---|---|---|")
        for category in categories:
            tried = [row for row in rows if row.category == category]
            print(f"| {category} | {len(tried)} | {sum(row.ok for row in tried)} |")


def run_all(root: Path, light: dict[str, Callable], heavy: dict[str, Callable]) -> list[Row]:
    """Light scenarios two at a time; heavy ones (several processes each) one after the other, except the
    locked database, which mostly waits and so runs in the background from the start."""
    locked = heavy.pop("locked", None)
    with ThreadPoolExecutor(max_workers=1) as background:
        waiting = background.submit(guarded, "locked", locked, root) if locked else None
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(guarded, name, scenario, root) for name, scenario in light.items()]
            rows = [row for job in jobs for row in job.result()]
        rows += [row for name, scenario in heavy.items() for row in guarded(name, scenario, root)]
        return rows + (waiting.result() if waiting else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kill -9 runs (default 20)")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ml-intern-faults-"))
    started = time.monotonic()
    light = {
        "transient": transient_faults,
        "connections": connection_faults,
        "timeout": timeout_fault,
        "permanent": permanent_faults,
        "context": context_faults,
        "tool-calls": broken_tool_calls,
        "dangling": dangling_calls,
        "stalls": stalls_and_loops,
        "disk-full": disk_full,
    }
    heavy = {
        "two-processes": two_processes,
        "secrets": secret_leaks,
        "destructive": destructive_commands,
        "kill-9": lambda path: crashes(path, args.kills),
        "locked": locked_database,
        "boundary": faults_boundary.scenarios,
        "approval": faults_approval.scenarios,
        "undo": faults_undo.scenarios,
        "secrets-on-disk": faults_secrets.scenarios,
        "hangs": faults_hangs.scenarios,
    }
    chosen = set(args.only.split(",")) if args.only else {*light, *heavy}
    light = {name: run for name, run in light.items() if name in chosen}
    heavy = {name: run for name, run in heavy.items() if name in chosen}
    rows = run_all(root, light, heavy)
    print_table(rows)
    timing = ", ".join(f"{name} {seconds:.0f}" for name, seconds in DURATIONS.items())
    print(f"{time.monotonic() - started:.0f} s in all (scenario seconds: {timing}); work files in {root}")
    sys.exit(0 if all(row.ok for row in rows) else 1)


if __name__ == "__main__":
    main()
