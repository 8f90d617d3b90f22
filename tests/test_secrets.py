"""Security through real `ml-intern` processes: credentials never reach the database, spill files, logs,
exported traces, stdout/stderr or error lines; destructive local commands need approval."""

from __future__ import annotations

import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from ml_intern.configs.schema import McpServer
from ml_intern.nodes.approval_interrupt import DENIED
from ml_intern.session.session import open_session
from tests.harness import REPO_ROOT, Sandbox
from tests.harness_cli import error_lines, json_events
from tests.harness_graph import make_services
from tests.harness_redaction import PEM, SHAPES
from tests.harness_secrets import (
    FORMATS,
    LITERAL,
    DestructiveRun,
    SecretRun,
    database_files,
    destructive_commands,
    fail_with_secret_error,
    leaks,
    run_destructive,
    run_scenario,
    stored_values,
    untouched,
)

pytestmark = pytest.mark.e2e  # real `ml-intern` processes


@pytest.fixture(scope="module")
def secret_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SecretRun]:
    """The scenario in each output format, and (key "error") a run that fails on a rejected key."""
    root = tmp_path_factory.mktemp("secrets")
    jobs = {fmt: lambda path, fmt=fmt: run_scenario(path, fmt) for fmt in FORMATS}
    jobs["error"] = fail_with_secret_error
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job, root / name) for name, job in jobs.items()}
        runs = {name: future.result() for name, future in futures.items()}
    for fmt in FORMATS:
        assert runs[fmt].done.returncode == 0, f"{fmt}: {runs[fmt].done.stderr[-2000:]}"
    return runs


def scenario_runs(runs: dict[str, SecretRun]) -> list[SecretRun]:
    """The runs of the full scenario (not the failing one)."""
    return [runs[fmt] for fmt in FORMATS]


def test_the_scenario_exercised_every_path(secret_runs: dict[str, SecretRun]) -> None:
    """The secrets did flow: the tools ran, the output spilled, the reply came back (redacted)."""
    for fmt, run in zip(FORMATS, scenario_runs(secret_runs), strict=True):
        assert list((run.workspace.ml_intern_home / "outputs").glob("bash-*.txt")), fmt
        assert "[redacted]" in run.done.stdout, fmt


def test_thread_title_holds_no_secret(secret_runs: dict[str, SecretRun]) -> None:
    titles = [row["title"] for run in scenario_runs(secret_runs) for row in run.workspace.thread_rows()]
    assert titles and [leaks(title) for title in titles] == [[]] * len(titles)


@pytest.mark.parametrize("fmt", FORMATS)
def test_checkpoints_hold_no_secret(secret_runs: dict[str, SecretRun], fmt: str) -> None:
    values = stored_values(secret_runs[fmt].workspace.database, ("checkpoints", "writes"))
    assert values and [name for value in values for name in leaks(value)] == []


def test_database_holds_no_secret(secret_runs: dict[str, SecretRun]) -> None:
    """Every table, decompressed, and the raw bytes of the database, -wal and -shm files."""
    for run in scenario_runs(secret_runs):
        files = [path.read_bytes() for path in database_files(run.workspace)]
        found = {name for data in [*stored_values(run.workspace.database), *files] for name in leaks(data)}
        assert files and found == set()


def test_spill_files_hold_no_secret(secret_runs: dict[str, SecretRun]) -> None:
    spills = [
        p for run in scenario_runs(secret_runs) for p in (run.workspace.ml_intern_home / "outputs").iterdir()
    ]
    assert spills and {p.name: leaks(p.read_bytes()) for p in spills} == {p.name: [] for p in spills}


def test_other_files_under_ml_intern_home_hold_no_secret(secret_runs: dict[str, SecretRun]) -> None:
    """Logs, snapshots and anything else the agent persists."""
    for run in scenario_runs(secret_runs):
        home = run.workspace.ml_intern_home
        skipped = {*database_files(run.workspace), *(home / "outputs").iterdir()}
        others = [p for p in home.rglob("*") if p.is_file() and p not in skipped]
        assert {str(p): leaks(p.read_bytes()) for p in others if leaks(p.read_bytes())} == {}


@pytest.mark.parametrize(
    "fmt",
    [
        "text",
        "json",
        pytest.param("stream-json"),
    ],
)
def test_stdout_and_stderr_hold_no_secret(secret_runs: dict[str, SecretRun], fmt: str) -> None:
    done = secret_runs[fmt].done
    chunks = ""
    if fmt == "stream-json":
        chunks = "".join(
            e.get("content", "") for e in json_events(done.stdout) if e["type"] == "assistant_chunk"
        )
    assert (leaks(done.stdout), leaks(done.stderr), leaks(chunks)) == ([], [], [])


def test_error_lines_hold_no_secret(secret_runs: dict[str, SecretRun]) -> None:
    failed = secret_runs["error"].done
    assert failed.returncode == 2
    [line] = error_lines(failed.stderr)
    assert "rejected the credentials" in line
    assert (leaks(failed.stdout), leaks(failed.stderr)) == ([], [])


def test_a_failed_model_call_leaves_no_secret_in_the_checkpoints(secret_runs: dict[str, SecretRun]) -> None:
    values = stored_values(secret_runs["error"].workspace.database, ("checkpoints", "writes"))
    assert values and [name for value in values for name in leaks(value)] == []


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_exported_traces_hold_no_secret(secret_runs: dict[str, SecretRun], fmt: str) -> None:
    from ml_intern.session.export import export_thread

    async def export(run: SecretRun) -> str:
        async with open_session(run.workspace.database) as session:
            return await export_thread(session, run.thread_id, fmt, run.workspace.env)

    for run in scenario_runs(secret_runs):
        trace = asyncio.run(export(run))
        assert "[redacted]" in trace and leaks(trace) == []


def test_a_script_keeps_its_variable_references(secret_runs: dict[str, SecretRun]) -> None:
    for run in scenario_runs(secret_runs):
        script = (run.workspace.workdir / "call.sh").read_text()
        assert script == 'curl -H "Authorization: Bearer $HF_TOKEN" https://x\n'


def test_tool_calls_run_with_the_models_arguments(secret_runs: dict[str, SecretRun]) -> None:
    """The model wrote a literal password into a file: it is written as is, and stored redacted."""
    for run in scenario_runs(secret_runs):
        assert (run.workspace.workdir / "app.conf").read_text() == f"password={LITERAL}\n"


# ---- MCP: spilled results and the server's stderr --------------------------------------------------------

LEAKY_SERVER = REPO_ROOT / "tests" / "fakes" / "mcp_stderr_server.py"
LEAK = "\n".join(["the server complains:", PEM, *(text for text, _, _ in SHAPES.values())]) + "\n"


async def test_mcp_spills_and_server_logs_hold_no_secret(sandbox: Sandbox) -> None:
    entry = McpServer.model_validate({"command": sys.executable, "args": [str(LEAKY_SERVER)]}).model_dump()
    services = make_services({"leaky": entry})
    try:
        await services.start()
        assert await services.tools_by_name["complain"].ainvoke({"text": LEAK}) == "complained"
        shown = await services.tools_by_name["dump"].ainvoke({"text": LEAK, "times": 200})
    finally:
        await services.aclose()
    log = (sandbox.ml_intern_home / "logs" / "mcp-leaky.log").read_text()
    [spill] = (sandbox.ml_intern_home / "outputs").glob("mcp-dump-*.txt")
    assert "the server complains:" in log and "[redacted]" in log  # the server's stderr did arrive
    assert {"log": leaks(log), "spill": leaks(spill.read_text()), "shown": leaks(str(shown))} == {
        "log": [], "spill": [], "shown": []
    }  # fmt: skip


# ---- destructive local commands ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def destructive_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DestructiveRun]:
    root = tmp_path_factory.mktemp("destructive")
    with ThreadPoolExecutor(max_workers=2) as pool:
        modes = ("deny", "ask")
        return dict(zip(modes, pool.map(lambda m: run_destructive(root / m, m), modes), strict=True))


async def saved_state(run: DestructiveRun) -> Any:
    [row] = run.workspace.thread_rows()
    async with open_session(run.workspace.database) as session:
        return await session.app.aget_state({"configurable": {"thread_id": row["thread_id"]}})


async def test_deny_rejects_destructive_commands_without_running_them(
    destructive_runs: dict[str, DestructiveRun],
) -> None:
    run = destructive_runs["deny"]
    assert run.done.returncode == 0, run.done.stderr
    assert untouched(run) == []
    assert (run.workspace.workdir / "ran_safe").exists()  # a command inside the workdir needs no approval
    results = [m for m in (await saved_state(run)).values["messages"] if isinstance(m, ToolMessage)]
    assert [DENIED in m.content for m in results] == [True] * 6 + [False]
    states = [e["state"] for e in json_events(run.done.stdout) if e["type"] == "tool_state_change"]
    assert states.count("rejected") == 6 and "approved" not in states


async def test_ask_stops_headless_for_approval_before_running_anything(
    destructive_runs: dict[str, DestructiveRun],
) -> None:
    run = destructive_runs["ask"]
    assert run.done.returncode == 3, run.done.stderr  # a headless turn waiting for approval
    assert untouched(run) == [] and not (run.workspace.workdir / "ran_safe").exists()
    [complete] = [e for e in json_events(run.done.stdout) if e["type"] == "turn_complete"]
    assert complete["stop_reason"] == "approval_required"
    [pending] = [i.value for i in (await saved_state(run)).interrupts]
    commands = [call["args"]["command"] for call in pending["tool_calls"]]
    assert commands == destructive_commands(run.victim)  # the safe call is not asked about
    assert all("destructive" in call["reason"] for call in pending["tool_calls"])


def test_ask_announces_the_request_as_an_approval_required_event(
    destructive_runs: dict[str, DestructiveRun],
) -> None:
    events = json_events(destructive_runs["ask"].done.stdout)
    [request] = [e for e in events if e["type"] == "approval_required"]
    assert len(request["tool_calls"]) == 6
    assert json.dumps(request["tool_calls"][0]["args"]).count("ran_rm_absolute") == 1
