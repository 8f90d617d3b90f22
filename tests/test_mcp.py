"""MCP servers: one persistent session per server, bounded results, failures reported once, names that
never shadow built-in tools, a stdio server's environment and stderr kept to itself. The servers are real
FastMCP processes (tests/fakes/mcp_server.py) over stdio, streamable HTTP and SSE."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from ml_intern.configs.schema import McpServer
from ml_intern.graph.builder import build_graph
from ml_intern.graph.context import RunContext
from ml_intern.nodes.approval_interrupt import call_need
from ml_intern.services import Services
from ml_intern.session.runner import new_turn
from ml_intern.tools.base import MAX_RESULT_CHARS, ToolError
from ml_intern.tools.mcp.servers import close_all, offered_names
from tests.fakes import llm_server as script
from tests.fakes.mcp_server import STDERR_BANNER
from tests.harness import FAKE_MCP_SERVER, REPO_ROOT, Sandbox, is_running, started_pids
from tests.harness_graph import make_services, stdio_server

pytestmark = pytest.mark.e2e  # the MCP servers are real processes (stdio, HTTP, SSE)

FAKE_MCP_FILES_SERVER = REPO_ROOT / "tests" / "fakes" / "mcp_files_server.py"
SDK_DEFAULT_ENV = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"}  # the MCP SDK always passes these
PYTHON_ADDED_ENV = {"LC_CTYPE"}  # Python's C-locale coercion may add it in the child


@asynccontextmanager
async def started(
    servers: dict[str, dict[str, Any]], answers: list[Any] = (), start: bool = True, **options: Any
) -> AsyncIterator[Services]:
    """Services, started unless `start` is false (then the first model call does it), closed at the end."""
    services = make_services(servers, answers, **options)
    try:
        if start:
            await services.start()
        yield services
    finally:
        await services.aclose()


async def run_turn(services: Services, prompt: str = "go") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One turn through the real graph: the final state and the custom events."""
    graph = build_graph()
    ctx = RunContext(model="vllm/scripted", workdir=str(Path.cwd()), approval="auto", services=services)
    state: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    async for mode, chunk in graph.astream(
        new_turn(prompt), {"recursion_limit": 60}, context=ctx, stream_mode=["custom", "values"]
    ):
        if mode == "values":
            state = chunk
        else:
            events.append(chunk)
    return state, events


def tool_texts(state: dict[str, Any]) -> list[str]:
    return [m.content for m in state["messages"] if isinstance(m, ToolMessage)]


def mcp_logs(events: list[dict[str, Any]]) -> list[str]:
    notices = [e for e in events if e.get("type") == "tool_log" and e.get("notice")]  # kept lines in the chat
    return [e["text"] for e in notices if e.get("tool") == "mcp"]


@pytest.fixture
def starts(tmp_path: Path) -> Path:
    """The file the fake server appends its pid to on every start."""
    return tmp_path / "starts.txt"


# ---- one persistent session --------------------------------------------------------------------------------


async def test_mcp_tools_reach_the_model_and_the_prompt_after_start(starts: Path) -> None:
    answers = [script.tool_call("shout", {"text": "hi", "times": 2}), "done"]
    async with started({"fake": stdio_server(starts)}) as services:
        services.chat_model.script.extend(answers)
        state, _ = await run_turn(services)
        model = services.chat_model
    assert tool_texts(state) == ["HIHI"]
    bound = {schema["function"]["name"] for schema in model.tool_schemas}
    assert {"shout", "picture", "explode", "environment", "fake__read", "bash"} <= bound
    system_prompt = model.calls[0][0].content
    assert "shout" in system_prompt and "fake__read" in system_prompt


async def test_the_server_starts_once_for_many_calls_and_turns(starts: Path) -> None:
    async with started({"fake": stdio_server(starts)}) as services:
        for _ in range(3):
            await services.start()
            services.chat_model.script.extend([script.tool_call("shout", {"text": "a"}), "ok"])
            state, _ = await run_turn(services)
            assert tool_texts(state)[-1] == "A"
        shout = services.tools_by_name["shout"]
        began = time.perf_counter()
        for _ in range(50):
            assert await shout.ainvoke({"text": "x"}) == "X"
        per_call_ms = (time.perf_counter() - began) / 50 * 1000
    print(f"MCP call over the persistent session: {per_call_ms:.1f} ms")
    assert len(started_pids(starts)) == 1
    assert per_call_ms < 200  # spawning a server per call costs 650-850 ms


async def test_concurrent_starts_start_each_server_once(starts: Path) -> None:
    services = make_services({"fake": stdio_server(starts)})
    try:
        await asyncio.gather(*(services.start() for _ in range(5)))
        assert [t.name for t in services.tools].count("shout") == 1
    finally:
        await services.aclose()
    assert len(started_pids(starts)) == 1


async def test_aclose_stops_the_server_process(starts: Path) -> None:
    async with started({"fake": stdio_server(starts)}) as services:
        [pid] = started_pids(starts)
        assert is_running(pid)
    assert not is_running(pid)
    with pytest.raises(ToolError, match="not available"):
        await services.tools_by_name["shout"].ainvoke({"text": "late"})


async def test_close_all_stops_every_server_of_the_loop(starts: Path) -> None:
    services = make_services({"fake": stdio_server(starts)})
    await services.start()
    [pid] = started_pids(starts)
    await close_all()
    assert not is_running(pid)


def test_leaving_the_event_loop_without_closing_stops_the_server(
    starts: Path, subprocess_env: dict[str, str]
) -> None:
    program = f"""
import asyncio, sys
sys.argv = ["x"]
from tests.harness_graph import make_services, stdio_server
from pathlib import Path
async def main():
    await make_services({{"fake": stdio_server(Path({str(starts)!r}))}}).start()
asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", program], env=subprocess_env, check=True, timeout=60)
    [pid] = started_pids(starts)
    deadline = time.monotonic() + 10
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_running(pid)


# ---- results -----------------------------------------------------------------------------------------------


async def test_an_image_becomes_a_short_placeholder(starts: Path) -> None:
    async with started({"fake": stdio_server(starts)}) as services:
        result = await services.tools_by_name["picture"].ainvoke({})
    assert result == "a tiny picture\n[image: image/png, 67 bytes, not shown]"


async def test_a_long_result_is_bounded_and_saved_in_full(starts: Path, sandbox: Sandbox) -> None:
    async with started({"fake": stdio_server(starts)}) as services:
        result = await services.tools_by_name["shout"].ainvoke({"text": "ab", "times": 30_000})
    assert len(result) <= MAX_RESULT_CHARS
    assert result.startswith("ABAB") and result.endswith("ABAB")
    [saved] = (sandbox.ml_intern_home / "outputs").glob("mcp-shout-*.txt")
    assert str(saved) in result
    assert saved.read_text() == "AB" * 30_000


async def test_a_failing_tool_answers_the_model_with_its_error(starts: Path) -> None:
    answers = [
        script.tool_call("explode", {"message": "kaboom"}),
        script.tool_call("shout", {"text": "b"}),
        "ok",
    ]
    async with started({"fake": stdio_server(starts)}, answers) as services:
        state, _ = await run_turn(services)
    assert tool_texts(state) == ["Error: Error executing tool explode: kaboom", "B"]


# ---- failures ----------------------------------------------------------------------------------------------


async def test_a_server_that_cannot_start_is_reported_once_and_the_run_goes_on(
    starts: Path, sandbox: Sandbox
) -> None:
    servers = {"broken": stdio_server(starts, command="no-such-mcp-server"), "fake": stdio_server(starts)}
    answers = [script.tool_call("shout", {"text": "c"}), "first", "second"]
    async with started(servers, answers, start=False) as services:
        first_state, first_events = await run_turn(services)
        _, second_events = await run_turn(services, "again")
    [report] = mcp_logs(first_events)
    assert report.startswith("MCP server broken failed to start: FileNotFoundError")
    assert "no-such-mcp-server" in report
    assert mcp_logs(second_events) == []
    assert services.warnings == [report]
    assert tool_texts(first_state) == ["C"]
    assert first_state["messages"][-1].content == "first"


async def test_a_server_that_does_not_answer_in_time_is_given_up(tmp_path: Path) -> None:
    silent = McpServer.model_validate(
        {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"], "timeout": 1}
    ).model_dump()
    began = time.monotonic()
    async with started({"silent": silent}) as services:
        elapsed = time.monotonic() - began
        assert services.warnings == ["MCP server silent failed to start: did not start within 1 s"]
    assert elapsed < 10


async def test_a_server_that_dies_mid_run_answers_with_a_clear_error(starts: Path) -> None:
    answers = [script.tool_call("shout", {"text": "d"}), script.tool_call("picture", {}), "ok"]
    async with started({"fake": stdio_server(starts)}, answers) as services:
        [pid] = started_pids(starts)
        os.kill(pid, signal.SIGKILL)
        state, events = await run_turn(services)
    first, second = tool_texts(state)
    assert first.startswith("Error: MCP server 'fake' is not available: stopped during the run")
    assert "cannot be used in this run" in first
    assert second.startswith("Error: MCP server 'fake' is not available")
    [report] = mcp_logs(events)
    assert report.startswith("MCP server fake: stopped during the run")
    assert state["messages"][-1].content == "ok"
    assert len(started_pids(starts)) == 1  # no restart behind the model's back


# ---- names -------------------------------------------------------------------------------------------------


async def test_a_tool_named_like_a_builtin_is_prefixed(starts: Path) -> None:
    async with started({"fake": stdio_server(starts)}) as services:
        tools = services.tools_by_name
        assert "fake__read" in tools
        assert tools["read"].metadata is None or "mcp_server" not in (tools["read"].metadata or {})
        assert await tools["fake__read"].ainvoke({"path": "x"}) == "fake read of x"
        assert [t.name for t in services.tools].count("read") == 1


@pytest.mark.parametrize(
    ("listed", "reserved", "expected"),
    [
        ([("s", "search")], set(), ["search"]),
        ([("s", "read")], {"read"}, ["s__read"]),
        ([("a", "search"), ("b", "search")], set(), ["a__search", "b__search"]),
        ([("my server", "do.it")], set(), ["my_server__do_it"]),
        ([("s", "x" * 80)], set(), ["s__" + "x" * 61]),
        ([("s", "s__t"), ("s", "t"), ("s", "t")], {"t"}, ["s__t", "s__t_2", "s__t_3"]),
    ],
)
def test_offered_names_are_valid_unique_and_never_shadow(
    listed: list[tuple[str, str]], reserved: set[str], expected: list[str]
) -> None:
    assert offered_names(listed, reserved) == expected


async def test_tools_option_selects_mcp_tools_by_tool_or_server_name(starts: Path) -> None:
    servers = {"fake": stdio_server(starts), "other": stdio_server(starts)}
    async with started(servers, tool_names=["read", "fake__shout", "other", "nope"]) as services:
        names = [t.name for t in services.tools]
    assert names[0] == "read" and "fake__shout" in names and "other__picture" in names
    assert "fake__picture" not in names
    assert services.warnings == ["--tools: unknown tool(s) nope"]


# ---- what a stdio server gets, and where its stderr goes ---------------------------------------------------


async def test_a_stdio_server_gets_only_the_configured_environment(
    starts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_notforservers0000000000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-notforservers000000000")
    async with started({"fake": stdio_server(starts, env={"MY_SETTING": "1"})}) as services:
        names = set((await services.tools_by_name["environment"].ainvoke({})).split())
    assert "MY_SETTING" in names
    assert names - {"MY_SETTING"} <= SDK_DEFAULT_ENV | PYTHON_ADDED_ENV


async def test_a_stdio_server_stderr_goes_to_its_log_file(
    starts: Path, sandbox: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    async with started({"fake": stdio_server(starts)}) as services:
        await services.tools_by_name["shout"].ainvoke({"text": "e"})
    log = (sandbox.ml_intern_home / "logs" / "mcp-fake.log").read_text()
    assert STDERR_BANNER in log
    assert "CallToolRequest" in log
    captured = capfd.readouterr()
    assert STDERR_BANNER not in captured.err + captured.out


# ---- http and sse ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def http_server(
    starts: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[str], int]]:
    """Start fake servers over HTTP transports; each is killed at teardown."""
    processes: list[subprocess.Popen] = []

    def start(transport: str) -> int:
        port = free_port()
        log = (tmp_path / f"{transport}.log").open("w")
        command = [sys.executable, str(FAKE_MCP_SERVER), "--starts", str(starts), "--transport", transport]
        processes.append(
            subprocess.Popen([*command, "--port", str(port)], env=subprocess_env, stdout=log, stderr=log)
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            time.sleep(0.1)
        raise AssertionError(
            f"fake {transport} MCP server did not listen: {(tmp_path / f'{transport}.log').read_text()}"
        )

    yield start
    for process in processes:
        process.kill()
        process.wait(timeout=10)


async def test_http_and_sse_servers_get_configured_headers_only(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_notforservers0000000000")
    http_port, sse_port = http_server("streamable-http"), http_server("sse")
    servers = {
        "remote": McpServer.model_validate(
            {
                "transport": "streamable_http",
                "url": f"http://127.0.0.1:{http_port}/mcp",
                "headers": {"Authorization": "Bearer configured-secret"},
            }
        ).model_dump(),
        "events": McpServer.model_validate({"url": f"http://127.0.0.1:{sse_port}/sse"}).model_dump(),
    }
    async with started(servers) as services:
        tools = services.tools_by_name
        assert services.warnings == []
        remote = await tools["remote__request_headers"].ainvoke({})
        events = await tools["events__request_headers"].ainvoke({})
        assert await tools["remote__shout"].ainvoke({"text": "f"}) == "F"
    assert "authorization: Bearer configured-secret" in remote
    assert "authorization" not in events.lower()
    assert "hf_notforservers" not in remote + events


# ---- approval: MCP tools are gated by config and by their read-only annotation -----------------------------


def files_server(**settings: Any) -> dict[str, Any]:
    """A validated `mcpServers` entry for the file tools server (tests/fakes/mcp_files_server.py)."""
    entry = {"command": sys.executable, "args": [str(FAKE_MCP_FILES_SERVER)], **settings}
    return McpServer.model_validate(entry).model_dump()


async def gated_turn(services: Services, approval: str) -> dict[str, Any]:
    """One turn through the real graph under `approval` (auto or deny: nothing waits for a human)."""
    ctx = RunContext(model="vllm/scripted", workdir=str(Path.cwd()), approval=approval, services=services)
    return await build_graph().ainvoke(new_turn("go"), {"recursion_limit": 60}, context=ctx)


@pytest.fixture
def victim(sandbox: Sandbox) -> Path:
    """A directory of the user's outside the working directory."""
    path = sandbox.root / "projects" / "thesis"
    path.mkdir(parents=True)
    (path / "chapter1.tex").write_text("years of work\n")
    return path


@pytest.mark.parametrize("approval", ["deny", "auto"])
async def test_an_mcp_tool_that_may_change_things_is_gated(victim: Path, approval: str) -> None:
    settings = {"approval": "always"} if approval == "auto" else {}
    answers = [script.tool_call("remove_tree", {"path": str(victim)}), "ok"]
    async with started({"files": files_server(**settings)}, answers) as services:
        state = await gated_turn(services, approval)
    [text] = tool_texts(state)
    assert "rejected" in text and (victim / "chapter1.tex").exists()


async def test_an_mcp_tool_annotated_read_only_runs_without_asking(victim: Path) -> None:
    answers = [script.tool_call("list_dir", {"path": str(victim)}), "ok"]
    async with started({"files": files_server()}, answers) as services:
        state = await gated_turn(services, "deny")
    assert tool_texts(state) == ["chapter1.tex"]


NEEDS = {None: None, "ask": False, "always": True}  # setting -> always_ask of the need (None: no approval)


@pytest.mark.parametrize(
    ("server", "top_level", "expected"),
    [
        ({}, {}, {"remove_tree": "ask", "list_dir": None, "make_dir": "ask"}),
        ({"approval": "never"}, {}, {"remove_tree": None, "list_dir": None, "make_dir": None}),
        ({"approval": "always"}, {}, {"remove_tree": "always", "list_dir": "always", "make_dir": "always"}),
        ({"tool_approval": {"remove_tree": "always"}}, {}, {"remove_tree": "always", "make_dir": "ask"}),
        ({"approval": "never", "tool_approval": {"remove_tree": "ask"}}, {}, {"remove_tree": "ask"}),
        ({"approval": "never"}, {"make_dir": "always"}, {"make_dir": "always", "remove_tree": None}),
        ({}, {"list_dir": "ask", "remove_tree": "never"}, {"list_dir": "ask", "remove_tree": None}),
    ],
)
async def test_mcp_approval_follows_the_tool_then_the_server_then_the_annotation(
    server: dict[str, Any], top_level: dict[str, str], expected: dict[str, str | None]
) -> None:
    async with started({"files": files_server(**server)}) as services:
        services.env.config = services.env.config.model_copy(update={"tool_approval": top_level})
        for name, setting in expected.items():
            need = call_need({"id": "c", "name": name, "args": {"path": "x"}}, services)
            assert (None if need is None else need.always_ask) == NEEDS[setting], name


async def test_the_default_hf_server_gets_the_hf_token_and_no_second_copy_of_a_builtin(
    http_server: Any, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    from ml_intern.configs.loader import load_config

    hf_port, other_port = http_server("streamable-http"), http_server("streamable-http")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hf_port}")
    monkeypatch.setenv("HF_TOKEN", "hf_onlyforthehub000000000")
    other = {"transport": "http", "url": f"http://127.0.0.1:{other_port}/mcp"}
    (sandbox.root / "config.json").write_text(f'{{"mcpServers": {{"other": {json.dumps(other)}}}}}')
    monkeypatch.setenv("ML_INTERN_CONFIG", str(sandbox.root / "config.json"))
    config = load_config(sandbox.workdir, os.environ).config
    assert config.mcpServers["hf-mcp-server"].url == f"http://127.0.0.1:{hf_port}/mcp?login"
    servers = {name: server.model_dump() for name, server in config.mcpServers.items()}
    async with started(servers) as services:
        tools = services.tools_by_name
        assert services.warnings == []
        hub = await tools["hf-mcp-server__request_headers"].ainvoke({})
        elsewhere = await tools["other__request_headers"].ainvoke({})
    assert "authorization: Bearer [redacted]" in hub  # the HF token, redacted in what the model reads
    assert "hf_onlyforthehub" not in elsewhere and "authorization" not in elsewhere.lower()
    assert "hf-mcp-server__read" not in tools and "other__read" in tools  # the hub's copy is left out
