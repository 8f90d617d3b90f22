"""The sandbox runtime end to end: `ml-intern --sandbox-tools` processes against a scripted model and a fake
Hub that "builds" each sandbox Space by running our real server.py here (tests/fakes/spaces_hub.py).
The tools act in the fake Space's root, never in the local workdir; the Space is deleted at exit, after Ctrl-C
and SIGTERM; a killed run leaves one that `ml-intern sandboxes --delete` removes. The in-process tests at the
end cover the runtime choice, the prompt, the banner and /status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ml_intern.configs.prompt import system_prompt
from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import EXIT_INTERRUPTED, EXIT_USAGE, UserError
from ml_intern.graph.events import notice, progress, tool_log
from ml_intern.services import STUDIO_NO_SANDBOX, build_services
from ml_intern.session.options import RunOptions
from ml_intern.session.run_sandbox import to_the_end
from ml_intern.session.start import SANDBOX_NEEDS_TOKEN, run_context, tool_runtime
from ml_intern.session.threads import ThreadInfo
from ml_intern.terminal.formats import TextOutput
from ml_intern.terminal.tables import banner, status_text, tools_status
from tests.fakes import llm_server as script
from tests.fakes.hub_server import USER
from tests.fakes.llm_server import ScriptedLLMServer
from tests.fakes.spaces_hub import SpacesHub
from tests.harness import is_running
from tests.harness_cli import MODEL, QUICK_RETRIES, Workspace, error_lines, only_thread
from tests.harness_terminal import Terminal, terminal_env

TOKEN = "hf_sandbox_runtime_test_token"  # the fake Hub's only valid token: the user's HF token
BUDGET = 16_000  # bytes of the first request's {"messages", "tools"} (tests/test_first_request.py)
MESSAGES_BUDGET = 2_000 + 600  # the local runtime's, plus the sandbox section of the prompt


# ---- fixtures and helpers ---------------------------------------------------------------------------------


@pytest.fixture
def hub() -> Iterator[SpacesHub]:
    with SpacesHub(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def ws(tmp_path: Path, llm_server: ScriptedLLMServer, hub: SpacesHub) -> Workspace:
    """A workspace whose Hub is the fake (HF_ENDPOINT) and whose HF token is the fake's."""
    workspace = Workspace.create(tmp_path / "ws", llm_server.url, {"retries": QUICK_RETRIES})
    workspace.env |= {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN}
    return workspace


def space_ids(hub: SpacesHub) -> list[str]:
    """The ids of the Spaces created, in order."""
    return [f"{body.get('organization') or USER}/{body['name']}" for body in hub.created]


def tool_results(llm_server: ScriptedLLMServer) -> list[str]:
    """The tool results of the last request the model received, in order."""
    return [str(m["content"]) for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]


def wait_until(condition: Callable[[], Any], seconds: float = 60.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {condition}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int | None) -> None:
    if pgid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def started_sleep(hub: SpacesHub) -> tuple[str, int]:
    """(space id, process group) of the `sleep 600` the scripted bash call started in the first sandbox."""
    space_id = wait_until(lambda: space_ids(hub)[0] if hub.created else None)
    marker = hub.root_of(space_id) / "pgid"
    text = wait_until(lambda: marker.read_text().strip() if marker.exists() else "")
    return space_id, int(text)


SLEEPER = "echo $$ > pgid; sleep 600"  # the sandbox's bash command: its process group, then a long wait


@contextlib.contextmanager
def sleeping_run(ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer) -> Iterator[Any]:
    """A headless sandbox run whose bash call sleeps in the Space: (process, space id, its process group);
    whatever the test does, the run and the command are gone afterwards."""
    llm_server.push(script.tool_calls([("bash", {"command": SLEEPER})]))
    run = ws.start("--model", MODEL, "--sandbox-tools", "wait a long time")
    pgid = None
    try:
        space_id, pgid = started_sleep(hub)
        yield run, space_id, pgid
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        kill_group(pgid)


# ---- headless runs ----------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_sandbox_thread_works_in_the_space_and_leaves_the_workdir_alone(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer
) -> None:
    train = (
        "import pathlib\nloss = 1.0\npathlib.Path('out.txt').write_text(f'loss={loss}')\nprint('trained')\n"
    )
    llm_server.push(
        script.tool_calls([("write", {"path": "train.py", "content": train})]),
        script.tool_calls([("edit", {"path": "train.py", "old_str": "loss = 1.0", "new_str": "loss = 0.5"})]),
        script.tool_calls([("bash", {"command": f"{sys.executable} train.py; echo server=$PPID"})]),
        script.tool_calls([("read", {"path": "out.txt"})]),
        script.text("trained: loss 0.5"),
    )
    done = ws.run("--model", MODEL, "--sandbox-tools", "train a tiny model")
    assert done.returncode == 0, done.stderr
    assert "trained: loss 0.5" in done.stdout

    [space_id] = space_ids(hub)
    root = hub.root_of(space_id)
    assert "loss = 0.5" in (root / "train.py").read_text()
    assert (root / "out.txt").read_text() == "loss=0.5"
    assert list(ws.workdir.iterdir()) == []  # nothing local: not the script, not its output
    bash_result, read_result = tool_results(llm_server)[-2:]
    assert "trained" in bash_result and "loss=0.5" in read_result

    [created] = hub.created  # one private Docker Space, with our server and its own token
    assert created.get("visibility") == "private" or created.get("private") is True, created
    assert created["sdk"] == "docker" and created["hardware"] == "cpu-basic"
    secrets = {secret["key"] for secret in created.get("secrets") or []}
    assert "SANDBOX_API_TOKEN" in secrets and "HF_TOKEN" not in secrets
    assert TOKEN not in json.dumps(hub.created)  # the HF token is never given to the sandbox
    assert {"Dockerfile", "server.py"} <= set(hub.commits[space_id][0])
    assert len(hub.commits[space_id]) == 1
    assert hub.runtime_polls[space_id] >= 1
    assert hub.deleted == [space_id]  # at exit
    server_pid = int(bash_result.rsplit("server=", 1)[1].split()[0])
    assert wait_until(lambda: not is_running(server_pid), 10)  # its server is gone with it

    [row] = ws.thread_rows()
    assert row["tool_runtime"] == "sandbox"
    system = llm_server.requests[0]["messages"][0]["content"]
    assert "# Sandbox" in system and "/app" in system and str(ws.workdir) not in system

    # Resumed, the thread keeps its runtime: a new, empty sandbox (the first one's files are gone)
    llm_server.push(script.tool_calls([("bash", {"command": "ls -a"})]), script.text("nothing there"))
    again = ws.run("resume", row["thread_id"], "what is in the sandbox?")
    assert again.returncode == 0, again.stderr
    assert len(space_ids(hub)) == 2 and hub.deleted == space_ids(hub)
    assert "train.py" not in tool_results(llm_server)[-1]
    assert [r["tool_runtime"] for r in ws.thread_rows()] == ["sandbox"]
    assert list(ws.workdir.iterdir()) == []


@pytest.mark.e2e
def test_the_first_sandbox_request_fits_the_budget(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(script.text("hi"))
    done = ws.run("--model", MODEL, "--sandbox-tools", "x")
    assert done.returncode == 0, done.stderr
    body = llm_server.requests[0]
    names = {t["function"]["name"] for t in body["tools"]}
    assert {"bash", "read", "write", "edit", "sandbox_create"} <= names
    assert len(json.dumps(body["messages"])) <= MESSAGES_BUDGET, len(json.dumps(body["messages"]))
    size = len(json.dumps({"messages": body["messages"], "tools": body["tools"]}))
    assert size <= BUDGET, size
    assert hub.deleted == space_ids(hub)  # the preloaded sandbox, unused, deleted at exit too


@pytest.mark.e2e
def test_a_gpu_sandbox_is_rejected_under_deny(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(
        script.tool_calls([("sandbox_create", {"hardware": "a10g-small"})]),
        script.text("could not get a GPU"),
    )
    done = ws.run("--model", MODEL, "--sandbox-tools", "--approval", "deny", "smoke test on a GPU")
    assert done.returncode == 0, done.stderr
    assert [body["hardware"] for body in hub.created] in ([], ["cpu-basic"])  # the preloaded one at most
    [result] = tool_results(llm_server)
    assert "reject" in result.lower() or "denied" in result.lower(), result
    assert hub.deleted == space_ids(hub)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"]
)
def test_an_interrupted_run_deletes_its_sandbox(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer, stop: signal.Signals
) -> None:
    with sleeping_run(ws, hub, llm_server) as (run, space_id, pgid):
        server = hub.process_of(space_id)
        assert server is not None and group_alive(pgid)
        run.send_signal(stop)
        out, err = run.communicate(timeout=60)
        assert run.returncode == EXIT_INTERRUPTED, err
        assert "Traceback" not in err
        assert hub.deleted == [space_id]
        assert server.poll() is not None  # the Space's server is gone
        assert wait_until(lambda: not group_alive(pgid), 10)  # and the command it ran was stopped


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("first", "second", "gap"),
    [
        (signal.SIGINT, signal.SIGINT, 0.05),
        (signal.SIGINT, signal.SIGINT, 0.3),
        (signal.SIGTERM, signal.SIGHUP, 0.3),
    ],
    ids=["ctrl-c-twice-at-once", "ctrl-c-twice-while-closing", "sigterm-then-sighup"],
)
def test_a_second_signal_does_not_cut_the_sandboxs_deletion_short(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer, first: int, second: int, gap: float
) -> None:
    with sleeping_run(ws, hub, llm_server) as (run, space_id, _):
        run.send_signal(first)
        time.sleep(gap)
        with contextlib.suppress(ProcessLookupError):
            run.send_signal(second)  # impatient: while the turn is cancelled, or the Space deleted
        _, err = run.communicate(timeout=60)
        assert "Traceback" not in err
        assert hub.deleted == [space_id] and space_id not in hub.spaces, err


@pytest.mark.e2e
def test_a_killed_run_leaves_a_sandbox_that_sandboxes_delete_removes(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer
) -> None:
    with sleeping_run(ws, hub, llm_server) as (run, space_id, _):
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=30)
        assert hub.deleted == [] and space_id in hub.spaces  # nothing could delete it
        listed = ws.run("sandboxes")
        assert listed.returncode == 0, listed.stderr
        [line] = [line for line in listed.stdout.splitlines() if space_id in line]
        assert "nobody" in line
        removed = ws.run("sandboxes", "--delete")
        assert removed.returncode == 0, removed.stderr
        assert hub.deleted == [space_id] and space_id in removed.stdout


@pytest.mark.e2e
def test_sandbox_tools_without_an_hf_token_is_one_line(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer
) -> None:
    del ws.env["HF_TOKEN"]
    done = ws.run("--model", MODEL, "--sandbox-tools", "x")
    assert done.returncode == EXIT_USAGE
    assert error_lines(done.stderr) == [f"ml-intern: error: {SANDBOX_NEEDS_TOKEN}"], done.stderr
    assert "Traceback" not in done.stderr and hub.created == []
    assert not ws.database.exists() or ws.thread_rows() == []


@pytest.mark.e2e
def test_sandbox_tools_on_a_local_thread_is_refused(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(script.text("hi"))
    assert ws.run("--model", MODEL, "x").returncode == 0
    thread_id = only_thread(ws)
    done = ws.run("--model", MODEL, "--thread", thread_id, "--sandbox-tools", "again")
    assert done.returncode == EXIT_USAGE
    [line] = error_lines(done.stderr)
    assert f"thread {thread_id} runs its tools locally" in line and "ml-intern --sandbox-tools" in line
    assert hub.created == []
    assert [r["tool_runtime"] for r in ws.thread_rows()] == ["local"]


# ---- the chat ---------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_the_chat_asks_for_a_gpu_sandbox_with_its_price_and_a_no_makes_nothing(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(
        script.tool_calls([("sandbox_create", {"hardware": "a10g-small"})]),
        script.text("staying on CPU"),
    )
    env = terminal_env(ws.env, llm_server.url) | {"PYTHONPATH": ws.env["PYTHONPATH"]}
    with contextlib.chdir(ws.workdir):
        terminal = Terminal(env, "--model", MODEL, "--sandbox-tools")
        try:
            shown = terminal.prompt()
            assert "tools: sandbox (a private HF Space of yours, deleted at exit)" in shown
            card = terminal.send("smoke test on a GPU")
            assert "a10g-small" in card and "$" in card and "/h" in card, card
            after = terminal.send("n")
            assert "staying on CPU" in after
            status = terminal.send("/status")
            assert "tools      sandbox" in status, status
            terminal.child.sendline("/quit")
            assert terminal.exit_code() == 0
        finally:
            terminal.child.close(force=True)
    assert [body["hardware"] for body in hub.created] in ([], ["cpu-basic"])  # no GPU Space
    assert hub.deleted == space_ids(hub)


@pytest.mark.e2e
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup-terminal-closed"])
def test_sigterm_or_sighup_ends_the_chat_and_deletes_its_sandbox(
    ws: Workspace, hub: SpacesHub, llm_server: ScriptedLLMServer, stop: signal.Signals
) -> None:
    env = terminal_env(ws.env, llm_server.url) | {"PYTHONPATH": ws.env["PYTHONPATH"]}
    with contextlib.chdir(ws.workdir):
        terminal = Terminal(env, "--model", MODEL, "--sandbox-tools")
        try:
            terminal.prompt()
            wait_until(lambda: hub.created)  # the preloaded sandbox
            space_id = space_ids(hub)[0]
            wait_until(lambda: hub.url_of(space_id) if space_id in hub.spaces else "deleted")
            terminal.child.kill(stop)
            assert terminal.exit_code() == EXIT_INTERRUPTED
        finally:
            terminal.child.close(force=True)
    assert hub.deleted == [space_id]
    assert "Traceback" not in terminal.output()


# ---- in process: the runtime choice, the prompt, the banner, /status --------------------------------------


def info(runtime: str) -> ThreadInfo:
    return ThreadInfo("abcd1234", "t", MODEL, "/w", 0.0, 0.0, 1, None, 0, 0, 0.0, tool_runtime=runtime)


def test_the_runtime_is_the_flag_else_the_threads_else_the_configs() -> None:
    local, sandbox = AgentConfig(), AgentConfig(tool_runtime="sandbox")
    assert tool_runtime(RunOptions(), local, None) == "local"
    assert tool_runtime(RunOptions(), sandbox, None) == "sandbox"
    assert tool_runtime(RunOptions(sandbox_tools=True), local, None) == "sandbox"
    assert tool_runtime(RunOptions(), local, info("sandbox")) == "sandbox"  # a resumed thread keeps its own
    assert tool_runtime(RunOptions(), sandbox, info("local")) == "local"
    assert tool_runtime(RunOptions(sandbox_tools=True), local, info("sandbox")) == "sandbox"
    with pytest.raises(UserError, match="thread abcd1234 runs its tools locally; --sandbox-tools applies"):
        tool_runtime(RunOptions(sandbox_tools=True), local, info("local"))


def test_the_sandbox_runtime_builds_its_manager_and_no_local_file_tools(tmp_path: Path) -> None:
    environ = {"HF_TOKEN": "hf_x", "VLLM_BASE_URL": "http://127.0.0.1:9/v1"}
    ctx = run_context(RunOptions(sandbox_tools=True), AgentConfig(), MODEL, False, environ)
    services = ctx.services
    assert services is not None and services.env is not None
    assert services.env.runtime == "sandbox" and services.config.tool_runtime == "sandbox"
    assert type(services.env.sandbox).__name__ == "SandboxManager"
    assert "sandbox_create" in services.tools_by_name and "# Sandbox" in services.prompt
    local = run_context(RunOptions(), AgentConfig(), MODEL, False, environ).services
    assert local is not None and local.env is not None
    assert local.env.runtime == "local" and local.env.sandbox is None
    assert "sandbox_create" not in local.tools_by_name and "# Sandbox" not in local.prompt
    with pytest.raises(UserError, match="needs a Hugging Face token"):
        run_context(RunOptions(sandbox_tools=True), AgentConfig(), MODEL, False, {"VLLM_BASE_URL": "x"})


def test_studio_refuses_a_sandbox_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"tool_runtime": "sandbox"}))
    environ = {"ML_INTERN_CONFIG": str(config), "HOME": str(tmp_path), "VLLM_BASE_URL": "http://127.0.0.1:9"}
    with pytest.raises(UserError) as refused:
        build_services(
            model=MODEL, workdir=tmp_path, tool_names=None, stream=False, environ=environ, config=None
        )
    assert str(refused.value) == STUDIO_NO_SANDBOX and "\n" not in STUDIO_NO_SANDBOX


def test_the_sandbox_prompt_is_short_and_names_sandbox_create_only_when_offered() -> None:
    local = system_prompt("my-project-dir", ["bash", "read"], runtime="local")
    with_create = system_prompt("my-project-dir", ["bash", "read", "sandbox_create"], runtime="sandbox")
    without = system_prompt("my-project-dir", ["bash", "read"], runtime="sandbox")
    assert "my-project-dir" in local and "my-project-dir" not in with_create
    assert len(with_create.encode()) - len(local.encode()) <= 600
    assert "sandbox_create" in with_create and "sandbox_create" not in without
    assert "push what matters to the Hub" in with_create


def test_the_banner_and_status_say_where_tools_run() -> None:
    assert (
        "tools: sandbox (a private HF Space of yours, deleted at exit)"
        in banner(MODEL, "t1", "/w", "sandbox").plain
    )
    assert "tools: local" in banner(MODEL, "t1", "/w", "local").plain
    assert "tools:" not in banner(MODEL, "t1", "/w").plain  # a caller that does not know says nothing
    running = {
        "runtime": "sandbox", "space_id": "me/ml-intern-sandbox-ab12cd34", "hardware": "t4-small",
        "stage": "running", "price_per_hour": 0.4, "running_since": 1000.0, "cost_so_far": 0.08,
    }  # fmt: skip
    line = tools_status(running, now=1000.0 + 12 * 60)
    assert line.startswith("sandbox me/ml-intern-sandbox-ab12cd34, on t4-small, running")
    assert "$0.4000/h" in line and "running for 12 min" in line and "about $0.0800 so far" in line
    assert tools_status({"runtime": "sandbox", "space_id": None, "stage": "none"}).startswith("sandbox: none")
    assert tools_status({"runtime": "local"}) == "local"
    status = SimpleNamespace(
        thread_id="t1", turns=1, input_tokens=1, output_tokens=1, cached_tokens=0, cost_usd=0.0,
        turn_usage={}, context_tokens=1, compactions=0, tools=running,
    )  # fmt: skip
    assert "tools      sandbox me/ml-intern-sandbox-ab12cd34" in status_text(MODEL, status, "ask", "/w").plain


def test_headless_text_shows_a_sandboxs_progress_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    output = TextOutput()
    output.event(progress("sandbox", "building me/ml-intern-sandbox-ab12cd34 on cpu-basic (15 s)"))
    output.event(tool_log("bash", "epoch 1/3"))  # a command's output: not a progress line
    output.event(notice("budget", "80% of the turn's budget spent"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "sandbox: building me/ml-intern-sandbox-ab12cd34 on cpu-basic (15 s)",
        "budget: 80% of the turn's budget spent",
    ]


async def test_closing_the_session_finishes_even_when_cancelled_meanwhile() -> None:
    steps: list[str] = []

    async def delete_the_sandbox() -> None:
        steps.append("deleting")
        await asyncio.sleep(0.2)
        steps.append("deleted")

    closing = asyncio.ensure_future(to_the_end(delete_the_sandbox()))
    await asyncio.sleep(0.05)
    closing.cancel()  # a signal during exit
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert steps == ["deleting", "deleted"]
