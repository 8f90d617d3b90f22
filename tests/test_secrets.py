"""Security through real `ml-intern` processes: credentials never reach the database, spill files, logs,
exported traces, stdout/stderr or error lines; destructive local commands need approval."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from ml_intern.configs.schema import packaged_defaults
from ml_intern.nodes.approval_interrupt import DENIED
from ml_intern.session.session import open_session
from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.test_faults import MODEL, QUICK_RETRIES, Workspace, error_lines, json_events

SECRETS = {  # environment variables a user has set, with real-looking values
    "HF_TOKEN": "hf_QwErTyUiOpAsDfGhJkLzXcVbNm123456",
    "GITHUB_TOKEN": "ghp_ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210",
    "OPENAI_API_KEY": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123",
    "VLLM_API_KEY": "sk-vllmKeyAbCdEfGhIjKlMnOp4567",  # sent as `Authorization: Bearer` to the model server
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "DB_PASSWORD": "correct-horse-battery-staple",  # no token shape: only its literal value can be redacted
}
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"  # token-shaped, in no variable
BEARER = "eyJhbGciOiJIUzI1NiJ9.cGF5bG9hZA.c2lnbmF0dXJl"
NEEDLES = {**SECRETS, "PAT": PAT, "BEARER": BEARER}
PROMPT = (
    f"Use {SECRETS['HF_TOKEN']} and {PAT} with the header Authorization: Bearer {BEARER}; "
    f"the database password is {SECRETS['DB_PASSWORD']}"
)
FORMATS = ("text", "json", "stream-json")


def fragment(value: str) -> str:
    """16 characters from inside a secret: a cut or split copy of it is found too."""
    return value[4:20]


def leaks(data: str | bytes) -> list[str]:
    """Names of the secrets whose fragment occurs in `data`."""
    raw = data.encode() if isinstance(data, str) else data
    return [name for name, value in NEEDLES.items() if fragment(value).encode() in raw]


def scenario() -> list[dict[str, Any]]:
    """Secrets in an error text, in tool arguments, in tool output (echo, env, a spilled log), in a reply."""
    spill = 'for i in $(seq 1 3000); do echo "line $i $HF_TOKEN $DB_PASSWORD"; done'
    return [
        script.error(500, f"upstream rejected key {SECRETS['OPENAI_API_KEY']}"),
        script.tool_calls(
            [
                ("bash", {"command": "echo $HF_TOKEN $GITHUB_TOKEN $AWS_SECRET_ACCESS_KEY; env"}),
                ("bash", {"command": f"echo {SECRETS['GITHUB_TOKEN']} {PAT} {SECRETS['DB_PASSWORD']}"}),
                ("bash", {"command": spill}),
            ]
        ),
        script.text(
            f"Your tokens: {SECRETS['HF_TOKEN']} {SECRETS['AWS_SECRET_ACCESS_KEY']} "
            f"Authorization: Bearer {BEARER}"
        ),
    ]


@dataclass
class SecretRun:
    """One headless run of the scenario."""

    workspace: Workspace
    done: subprocess.CompletedProcess[str]
    thread_id: str


def run_scenario(root: Path, fmt: str) -> SecretRun:
    with ScriptedLLMServer(*scenario()) as server:
        workspace = Workspace.create(root, server.url)
        workspace.env.update(SECRETS)
        done = workspace.run("-m", MODEL, "--output-format", fmt, PROMPT)
    [row] = workspace.thread_rows()
    return SecretRun(workspace, done, row["thread_id"])


def fail_with_secret_error(root: Path) -> SecretRun:
    """A run against a server that rejects the key, echoing it (and a bearer token) in its error text."""
    rejection = f"Incorrect API key provided: {SECRETS['VLLM_API_KEY']}. Authorization: Bearer {BEARER}"
    with ScriptedLLMServer(script.error(401, rejection)) as server:
        workspace = Workspace.create(root, server.url)
        workspace.env.update(SECRETS)
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", "try again")
    [row] = workspace.thread_rows()
    return SecretRun(workspace, done, row["thread_id"])


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


def database_files(workspace: Workspace) -> list[Path]:
    return sorted(workspace.ml_intern_home.glob("checkpoints.sqlite*"))  # the database, -wal and -shm


def inflate(value: Any) -> bytes:
    """A stored value as bytes, zlib blobs (large checkpoint blobs) decompressed."""
    if not isinstance(value, bytes):
        return str(value).encode()
    try:
        return zlib.decompress(value)
    except zlib.error:
        return value


def stored_values(database: Path, tables: tuple[str, ...] = ()) -> list[bytes]:
    """Every value of every row of `tables` (default: all tables), decompressed."""
    with sqlite3.connect(database) as conn:
        names = tables or tuple(
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
        return [
            inflate(value)
            for name in names
            for row in conn.execute(f'SELECT * FROM "{name}"')
            for value in row
        ]


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


# ---- destructive local commands ---------------------------------------------------------------------------

CURL_PATTERN = r"\bcurl\b"  # added by the user's config


@dataclass
class DestructiveRun:
    """A headless run whose model asks for destructive commands and one safe command in a single reply."""

    workspace: Workspace
    done: subprocess.CompletedProcess[str]
    victim: Path  # a directory outside the working directory that `rm -rf` targets


def destructive_commands(victim: Path) -> list[str]:
    """Each command leaves a marker file in the workdir if it runs at all."""
    return [
        f"touch ran_rm_absolute && rm -rf {victim}",
        "touch ran_rm_home && rm -rf ~/victim_home",
        "touch ran_force_push && git push --force origin main",
        "touch ran_sudo && sudo true",
        "touch ran_dotfile && echo 'export PWNED=1' >> ~/.bashrc",
        "touch ran_curl && curl -s http://127.0.0.1:9/",
    ]


def run_destructive(root: Path, approval: str) -> DestructiveRun:
    victim = root / "victim"
    patterns = [*packaged_defaults()["bash"]["approval_patterns"], CURL_PATTERN]
    calls = [
        ("bash", {"command": c}) for c in [*destructive_commands(victim), "touch ran_safe && rm -rf build"]
    ]
    with ScriptedLLMServer(script.tool_calls(calls), script.text("cleaned up")) as server:
        config = {"retries": QUICK_RETRIES, "bash": {"approval_patterns": patterns}}
        workspace = Workspace.create(root, server.url, config=config)
        for kept in (victim, workspace.home / "victim_home"):
            kept.mkdir(parents=True)
            (kept / "keep.txt").write_text("precious")
        done = workspace.run(
            "-m", MODEL, "--approval", approval, "--output-format", "stream-json", "clean up"
        )
    return DestructiveRun(workspace, done, victim)


@pytest.fixture(scope="module")
def destructive_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DestructiveRun]:
    root = tmp_path_factory.mktemp("destructive")
    with ThreadPoolExecutor(max_workers=2) as pool:
        modes = ("deny", "ask")
        return dict(zip(modes, pool.map(lambda m: run_destructive(root / m, m), modes), strict=True))


def untouched(run: DestructiveRun) -> list[str]:
    """What the destructive commands would have changed, if anything did change."""
    problems = [p.name for p in run.workspace.workdir.glob("ran_*") if p.name != "ran_safe"]
    for kept in (run.victim, run.workspace.home / "victim_home"):
        problems += [] if (kept / "keep.txt").exists() else [f"{kept} deleted"]
    return problems + (["~/.bashrc written"] if (run.workspace.home / ".bashrc").exists() else [])


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
    rejected = [e for e in json_events(run.done.stdout) if e["type"] == "tool_state_change"]
    assert len(rejected) == 6 and {e["state"] for e in rejected} == {"rejected"}


async def test_ask_stops_headless_for_approval_before_running_anything(
    destructive_runs: dict[str, DestructiveRun],
) -> None:
    run = destructive_runs["ask"]
    assert run.done.returncode == 0, run.done.stderr
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
