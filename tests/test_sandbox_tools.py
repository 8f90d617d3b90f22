"""The sandbox runtime's tools and client against the real sandbox server (a process on 127.0.0.1): files
land in the server's root and never in the workdir, the write guard, a cancelled command killed; where the HF
token goes; approval, cost and undo of sandbox calls; hf_jobs taking a script from the sandbox."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from ml_intern.graph.context import RunContext
from ml_intern.model.ids import ModelSpec
from ml_intern.services import Services
from ml_intern.session.effects import remote_effects
from ml_intern.session.runner import new_turn
from ml_intern.session.session import open_session
from ml_intern.session.undo import thread_runtime
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs import tool as jobs_tool
from ml_intern.tools.jobs.script import is_path, sandbox_script
from ml_intern.tools.jobs.spec import JobArgs
from ml_intern.tools.registry import approval_need, call_effect, offered
from ml_intern.tools.sandbox.client import SandboxClient, sends_edge_token
from ml_intern.tools.sandbox.rules import create_needs_approval
from ml_intern.tools.sandbox.tools import make_tools
from tests.fakes.chat_model import ScriptedChatModel
from tests.fakes.http_fake import FakeHTTPServer, Recorded, Reply, json_reply
from tests.fakes.jobs_server import FakeJobsHub
from tests.harness import is_running
from tests.harness_sandbox import SandboxServer

SPACE_ID = "alice/ml-intern-sandbox-0badcafe"
HF_TOKEN = "hf_sandbox_test_token_0123456789"
CLOSED = "http://127.0.0.1:9"  # nothing listens: the Hub's prices fall back to the table


class ServerManager:
    """The run's sandbox, reduced to one running server: what the tools ask of a SandboxManager."""

    def __init__(self, client: SandboxClient) -> None:
        self.sandbox = client
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.hardware = "cpu-basic"

    async def client(self) -> SandboxClient:
        return self.sandbox

    async def create(self, hardware: str, **extra: Any) -> str:
        self.created.append((hardware, extra))
        self.hardware = hardware
        return f"Sandbox {SPACE_ID} is running on {hardware}."

    def status(self) -> dict[str, Any]:
        return {"space_id": SPACE_ID, "hardware": self.hardware}


def sandbox_env(workdir: Path, home: Path, **fields: Any) -> ToolEnv:
    workdir.mkdir(parents=True, exist_ok=True)
    return ToolEnv(workdir=workdir, home=home, runtime="sandbox", **fields)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(tmp_path / "space") as running:
        yield running


@pytest.fixture
async def env(server: SandboxServer, tmp_path: Path) -> AsyncIterator[ToolEnv]:
    env = sandbox_env(tmp_path / "work", tmp_path / "home", hf_token=HF_TOKEN, hf_endpoint=CLOSED)
    client = SandboxClient(server.url, server.token, HF_TOKEN, CLOSED, waits=(0.01, 0.01))
    env.sandbox = ServerManager(client)
    yield env
    await client.aclose()


@pytest.fixture
def tools(env: ToolEnv) -> dict[str, Any]:
    """The sandbox tools as the model gets them."""
    return {tool.name: offered(tool, "sandbox") for tool in make_tools(env)}


async def wait_until(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return found


def local_files(env: ToolEnv) -> list[Path]:
    return sorted(env.workdir.rglob("*"))


# ---- the tools against the real server --------------------------------------------------------------------


@pytest.mark.e2e
async def test_write_edit_read_and_bash_work_in_the_servers_root_not_the_workdir(tools, env, server):
    wrote = await tools["write"].ainvoke({"path": "pkg/train.py", "content": "x = 1\nprint(x)\n"})
    assert "/app/pkg/train.py in the sandbox" in wrote
    edited = await tools["edit"].ainvoke(
        {"path": "/app/pkg/train.py", "old_str": "x = 1", "new_str": "x = 42"}
    )
    assert "42" in edited
    assert (server.root / "pkg" / "train.py").read_text() == "x = 42\nprint(x)\n"
    ran = await tools["bash"].ainvoke({"command": "python3 pkg/train.py > out.txt; cat out.txt; exit 3"})
    assert ran.startswith("42") and ran.endswith("exit code 3")
    read = await tools["read"].ainvoke({"path": "out.txt"})
    assert read == "     1\t42"
    assert await tools["bash"].ainvoke({"command": "true"}) == "(no output)"
    assert local_files(env) == []


@pytest.mark.e2e
async def test_read_says_how_to_read_on(tools, server):
    (server.root / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    read = await tools["read"].ainvoke({"path": "long.txt", "offset": 3, "limit": 2})
    assert read == "     3\tline 3\n     4\tline 4\n\n[Lines 3-4 of 10. Continue with offset=5.]"


@pytest.mark.e2e
async def test_an_existing_sandbox_file_is_overwritten_or_edited_only_after_a_read(tools, server):
    (server.root / "notes.md").write_text("mine\n")
    with pytest.raises(ToolError, match="already exists in the sandbox and was not read"):
        await tools["write"].ainvoke({"path": "notes.md", "content": "theirs\n"})
    with pytest.raises(ToolError, match="You must read notes.md before editing it"):
        await tools["edit"].ainvoke({"path": "notes.md", "old_str": "mine", "new_str": "ours"})
    assert (server.root / "notes.md").read_text() == "mine\n"
    await tools["read"].ainvoke({"path": "/app/notes.md"})
    await tools["write"].ainvoke({"path": "notes.md", "content": "theirs\n"})
    assert (server.root / "notes.md").read_text() == "theirs\n"


@pytest.mark.e2e
async def test_python_files_get_the_syntax_and_training_warnings(tools):
    broken = await tools["write"].ainvoke({"path": "bad.py", "content": "def f(:\n"})
    assert "Warning: Python syntax error at line 1" in broken
    await tools["write"].ainvoke({"path": "train.py", "content": "trainer = make()\n"})
    edited = await tools["edit"].ainvoke(
        {"path": "train.py", "old_str": "trainer = make()", "new_str": "trainer = make()\ntrainer.train()"}
    )
    assert "never saves or pushes the model" in edited


@pytest.mark.e2e
async def test_a_command_past_its_timeout_is_killed_and_said_so(tools):
    with pytest.raises(ToolError, match="Command timed out after 1s and was killed"):
        await tools["bash"].ainvoke({"command": "echo started; sleep 30", "timeout": 1})


@pytest.mark.e2e
async def test_a_cancelled_command_is_killed_in_the_sandbox_and_earlier_background_jobs_run_on(tools, server):
    started = await tools["bash"].ainvoke({"command": "nohup sleep 600 > train.log 2>&1 & echo $!"})
    training = int(started.split()[0])
    call = asyncio.ensure_future(tools["bash"].ainvoke({"command": "echo $$ > pid.txt; exec sleep 600"}))
    pid_file = server.root / "pid.txt"
    pid = int(await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip()))
    assert is_running(pid)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_until(lambda: not is_running(pid), 10)
    assert server.alive() and is_running(training)  # the model's training job was not the cancelled call


@pytest.mark.e2e
async def test_a_wrong_sandbox_token_is_one_clear_line(server, env):
    client = SandboxClient(server.url, "not-the-token", None, "http://127.0.0.1:9", waits=(0.01,))
    try:
        with pytest.raises(ToolError, match="^the sandbox refused our token: "):
            await client.call("exists", {"path": "x"}, 5)
        assert await client.health()
    finally:
        await client.aclose()


@pytest.mark.e2e
async def test_sandbox_create_reports_paid_hardware_to_the_budget(tools, env):
    tool = tools["sandbox_create"]
    call = {"name": "sandbox_create", "id": "c1", "type": "tool_call"}
    paid = await tool.ainvoke({**call, "args": {"hardware": "t4-small", "trackio_project": "runs"}})
    assert paid.content == f"Sandbox {SPACE_ID} is running on t4-small."
    # at most config sandbox.max_hours (2 h by default) at $0.40/h: the manager deletes it then
    assert paid.artifact == {"job": {"id": SPACE_ID, "state": "started", "max_cost_usd": 0.8}}
    assert env.sandbox.created == [("t4-small", {"trackio_project": "runs"})]
    free = await tool.ainvoke({**call, "args": {}})
    assert free.artifact is None and env.sandbox.created[-1] == ("cpu-basic", {})


# ---- where the tokens go: the client against recording servers ---------------------------------------------


class Recording(FakeHTTPServer):
    """Answers every sandbox call with `reply` (after `failures` replies of the Space's edge); with `edge`,
    refuses (401) a call whose Authorization is not `Bearer <edge>`, as a private Space's edge does."""

    def __init__(self, reply: Reply | None = None, failures: int = 0, edge: str = "") -> None:
        super().__init__()
        self.reply = reply or json_reply(200, {"exists": False, "is_dir": False, "size": 0})
        self.edge_failures, self.edge = failures, edge
        self.route("POST", r"/api/\w+", self.answer)
        self.route("GET", r"/api/health", lambda _: json_reply(200, {"ok": True, "version": 1}))

    def answer(self, request: Recorded) -> Reply:
        if self.edge and request.headers.get("authorization") != f"Bearer {self.edge}":
            return 401, {"Content-Type": "text/plain"}, b"Unauthorized"
        if self.edge_failures:
            self.edge_failures -= 1
            return 502, {"Content-Type": "text/html"}, b"<html><body>502 Bad Gateway</body></html>"
        return self.reply


@asynccontextmanager
async def client_of(url: str, hf_endpoint: str) -> AsyncIterator[SandboxClient]:
    client = SandboxClient(url, "sandbox-token", HF_TOKEN, hf_endpoint, waits=(0.01, 0.01))
    try:
        yield client
    finally:
        await client.aclose()


async def test_the_edge_token_goes_to_hf_endpoints_host_only_and_the_sandbox_token_always():
    with Recording() as server:
        port = server.url.rsplit(":", 1)[1]
        async with client_of(f"http://127.0.0.1:{port}", "http://127.0.0.1:9") as same_host:
            await same_host.call("exists", {"path": "a"}, 5)
        async with client_of(f"http://localhost:{port}", "http://127.0.0.1:9") as other_host:
            await other_host.call("exists", {"path": "b"}, 5)
    to_hub_host, to_other = server.requests
    assert to_hub_host.headers["authorization"] == f"Bearer {HF_TOKEN}"
    assert "authorization" not in to_other.headers
    assert {r.headers["x-sandbox-authorization"] for r in server.requests} == {"Bearer sandbox-token"}


async def test_a_refused_edge_token_is_renewed_once_and_the_hf_token_never_sent():
    renewals: list[str] = []

    async def renew() -> str:
        renewals.append("fresh-edge-token")
        return renewals[-1]

    with Recording(edge="fresh-edge-token") as server:
        client = SandboxClient(server.url, "sandbox-token", "expired", server.url, waits=(0.01,), renew=renew)
        assert (await client.call("exists", {"path": "a"}, 5))["exists"] is False
        server.edge = "another"  # refused again after the renewal: one line, no loop
        with pytest.raises(ToolError, match="the sandbox refused our token: Unauthorized"):
            await client.call("exists", {"path": "b"}, 5)
        await client.aclose()
    sent = [r.headers.get("authorization") for r in server.requests]
    assert sent == [
        "Bearer expired",
        "Bearer fresh-edge-token",
        "Bearer fresh-edge-token",
        "Bearer fresh-edge-token",
    ]
    assert renewals == ["fresh-edge-token", "fresh-edge-token"]
    assert all(HF_TOKEN not in str(r.headers) for r in server.requests)


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://alice-ml-intern-sandbox-0badcafe.hf.space", True),
        ("http://alice-ml-intern-sandbox-0badcafe.hf.space", False),
        ("https://alice.hf.space.evil.example", False),
        ("https://evil.example/?.hf.space", False),
        ("https://huggingface.co.evil.example", False),
        ("https://hub.internal:8443", True),
        ("http://hub.internal:8443", False),
    ],
)
def test_which_sandbox_urls_get_the_edge_token(url, sent):
    assert sends_edge_token(url, "https://hub.internal") is sent


async def test_a_redirect_is_not_followed_and_carries_no_token():
    with Recording() as elsewhere, Recording() as server:
        server.reply = (302, {"Location": f"{elsewhere.url}/steal"}, b"")
        async with client_of(server.url, server.url) as client:
            with pytest.raises(ToolError, match="redirected exists to 127.0.0.1; redirects are not followed"):
                await client.call("exists", {"path": "a"}, 5)
    assert len(server.requests) == 1 and elsewhere.requests == []


async def test_the_edges_errors_are_retried_for_reads_but_never_for_commands():
    with Recording(json_reply(200, {"content": "     1\tok", "total_lines": 1}), failures=2) as server:
        async with client_of(server.url, "http://127.0.0.1:9") as client:
            assert (await client.call("read", {"path": "a"}, 5))["content"] == "     1\tok"
            server.edge_failures = 1
            with pytest.raises(ToolError, match=r"^the sandbox is not answering \(restarting\?\)"):
                await client.call("bash", {"command": "make"}, 5)
    assert [r.path for r in server.requests] == ["/api/read"] * 3 + ["/api/bash"]


async def test_a_refused_connection_is_tried_three_times_then_named():
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    async with client_of("http://127.0.0.1:9", "http://127.0.0.1:9") as client:
        client.sleep = record
        with pytest.raises(ToolError, match="^the sandbox at http://127.0.0.1:9 is not reachable"):
            await client.call("bash", {"command": "ls"}, 5)
        assert not await client.health()
    assert waited == [0.01, 0.01]


class Dripping:
    """A hostile server in the sandbox: answers with headers, then one byte every 0.2 s for `seconds`."""

    def __init__(self, seconds: float = 10.0) -> None:
        self.seconds = seconds
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection, contextlib.suppress(OSError):
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{"
            )
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                time.sleep(0.2)
                connection.sendall(b" ")

    def __enter__(self) -> Dripping:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()


async def test_a_reply_dripped_byte_by_byte_ends_at_the_calls_deadline():
    with Dripping(seconds=10.0) as server:
        client = SandboxClient(server.url, "sandbox-token", None, CLOSED, waits=(), slack=0.0)
        started = time.monotonic()
        with pytest.raises(ToolError, match="^the sandbox did not answer bash within 1s$"):
            await client.call("bash", {"command": "ls", "id": "x"}, 1)
        await client.aclose()
    assert time.monotonic() - started < 3  # not the 10 s the drip lasts (each read came in time)


# ---- approval, cost and undo ---------------------------------------------------------------------------


def test_paid_hardware_is_asked_with_the_hubs_hourly_price(tmp_path):
    with FakeJobsHub() as hub:
        hub.hardware["t4-small"] = 0.55
        config = {"sandbox": {"max_hours": 1.5}}
        env = sandbox_env(
            tmp_path / "work", tmp_path / "home", hf_endpoint=hub.url, hf_token=hub.token, config=config
        )
        need = approval_need("sandbox_create", {"hardware": "t4-small"}, env)
        assert approval_need("sandbox_create", {"hardware": "cpu-basic"}, env) is None
        assert approval_need("sandbox_create", {}, env) is None
    assert need is not None and need.paid and need.cost_usd == pytest.approx(0.55 * 1.5)
    assert need.reason == (
        "sandbox on t4-small: $0.55/h (Hub prices), at most 1.5 h: ≤ $0.83; billed while it runs, deleted at "
        "exit or after 1.5 h"
    )
    assert "price unknown" in str(create_needs_approval({"hardware": "mystery-gpu"}, env))


def test_sandbox_commands_are_asked_only_when_they_match_an_approval_pattern(tmp_path):
    env = sandbox_env(tmp_path / "work", tmp_path / "home", config={"bash": {"confine": "off"}})
    assert approval_need("bash", {"command": "pip install torch && python train.py"}, env) is None
    need = approval_need("bash", {"command": "rm -rf /"}, env)
    assert need is not None and need.reason == "sandbox command that may be destructive: rm -rf /"
    assert approval_need("write", {"path": "/etc/passwd", "content": ""}, env) is None  # the sandbox's own


def test_sandbox_writes_are_remote_effects_of_a_sandbox_thread_only():
    assert call_effect("write", {"path": "a.py", "content": ""}, "sandbox") == "sandbox"
    assert call_effect("read", {"path": "a.py"}, "sandbox") == "nothing"
    assert call_effect("write", {"path": "a.py", "content": ""}) == "local files"
    messages = [
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "write",
                    "args": {"path": "train.py", "content": "x"},
                    "id": "w",
                    "type": "tool_call",
                },
                {"name": "bash", "args": {"command": "python train.py"}, "id": "b", "type": "tool_call"},
                {"name": "read", "args": {"path": "train.py"}, "id": "r", "type": "tool_call"},
            ],
        ),
        ToolMessage(content="Wrote 1 bytes", tool_call_id="w"),
        ToolMessage(content="ok", tool_call_id="b"),
        ToolMessage(content="     1\tx", tool_call_id="r"),
    ]
    assert remote_effects(messages, "sandbox") == [
        "write train.py (in the sandbox: not put back)",
        "bash (in the sandbox: not put back)",
    ]
    assert remote_effects(messages) == []


def sandbox_services(env: ToolEnv, answers: list[Any]) -> Services:
    return Services(
        model=ModelSpec(model_id="test/scripted", litellm_model="test/scripted"),
        chat_model=ScriptedChatModel(answers),
        tools=[offered(tool, "sandbox") for tool in make_tools(env)],
        config={},
        prompt="You are the test agent.",
        env=env,
    )


def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}]
    )


@pytest.mark.parametrize("approval", ["deny", "ask"])
async def test_a_gpu_sandbox_is_rejected_under_deny_and_asked_under_ask(approval, tmp_path):
    env = sandbox_env(tmp_path / "work", tmp_path / "home")
    env.sandbox = ServerManager(SandboxClient("http://127.0.0.1:9", "t", None, "http://127.0.0.1:9"))
    answers = [call("sandbox_create", {"hardware": "a10g-small"}, "gpu"), "fine"]
    services = sandbox_services(env, answers)
    ctx = RunContext(model="test/scripted", workdir=str(env.workdir), approval=approval, services=services)
    events: list[dict[str, Any]] = []
    async with open_session(tmp_path / "db.sqlite") as session:
        outcome = await session.turn("t1", new_turn("smoke test on a GPU"), ctx, events.append, title="gpu")
        state = (await session.app.aget_state({"configurable": {"thread_id": "t1"}})).values
    assert env.sandbox.created == []
    if approval == "deny":
        (result,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
        assert result.status == "error" and "rejected" in str(result.content)
        assert outcome.stop_reason == "end_turn"
    else:
        assert outcome.stop_reason == "approval_required"
        assert "sandbox on a10g-small: $1.00/h (list prices)" in str(outcome.approval)


@pytest.mark.e2e
async def test_undo_lists_a_sandbox_threads_changes_and_leaves_the_sandbox_alone(env, server, tmp_path):
    answers = [
        call("write", {"path": "train.py", "content": "print(1)\n"}, "w1"),
        call("bash", {"command": "python3 train.py > out.txt"}, "b1"),
        "done",
    ]
    ctx = RunContext(
        model="test/scripted",
        workdir=str(env.workdir),
        approval="auto",
        services=sandbox_services(env, answers),
    )
    async with open_session(tmp_path / "db.sqlite") as session:
        await session.turn("t2", new_turn("train"), ctx, lambda _: None, title="train")
        await session.threads.conn.execute(
            "UPDATE ml_intern_threads SET tool_runtime = 'sandbox' WHERE thread_id = 't2'"
        )
        assert await thread_runtime(session.threads, "t2") == "sandbox"
        report = await session.undo("t2", 1)
    assert report.remote_effects == [
        "write train.py (in the sandbox: not put back)",
        "bash (in the sandbox: not put back)",
    ]
    assert report.restored == [] and report.removed == []
    assert (server.root / "out.txt").read_text() == "1\n" and local_files(env) == []


# ---- hf_jobs takes a script path from the sandbox ------------------------------------------------------


def shipped_script(command: list[str]) -> str:
    """The script an inline-code job command writes in the container (the last base64 payload: the
    provenance wrapper ships its own first)."""
    encoded = re.findall(r"printf %s (\S+) \| base64 -d", " ".join(command))
    assert encoded, command
    return base64.b64decode(encoded[-1]).decode()


@pytest.mark.e2e
async def test_hf_jobs_runs_a_script_path_from_the_sandbox(env, server, tmp_path):
    (server.root / "train.py").write_text("print('from the sandbox')\n")
    (env.workdir / "train.py").write_text("print('from the workdir')\n")
    with FakeJobsHub() as hub:
        env.hf_endpoint, env.hf_token = hub.url, hub.token
        env.config = env.config.model_copy(update={"confirm_cpu_jobs": True})
        tool = offered(jobs_tool.make_tools(env)[0], "sandbox")
        card = approval_need("hf_jobs", {"operation": "run", "script": "train.py"}, env)
        assert card is not None and "will not start" not in card.reason  # the workdir's train.py is not it
        assert card.reason.endswith(
            "train.py; WARNING: the script train.py is read from the sandbox when the job starts "
            "(its code is not shown here) and runs with your HF_TOKEN"
        )
        answer = await tool.ainvoke({"operation": "run", "script": "train.py", "wait": False})
        assert answer.startswith("Job submitted")
        with pytest.raises(ToolError, match="Script file not found in the sandbox: missing.py"):
            await tool.ainvoke({"operation": "run", "script": "missing.py", "wait": False})
        (request,) = hub.requests_to("POST", r"^/api/jobs/alice$")
    assert shipped_script(request.body["command"]) == "print('from the sandbox')\n"


@pytest.mark.parametrize(
    ("script", "path"),
    [
        ("train.py", True),
        ("pkg/run.sh", True),
        ("/app/train", True),
        ("./train", True),
        ("../data/prep.py", True),
        ("print('hello from a job')", False),
        ("import os", False),
        ("1/0", False),
        ("my script.py", False),
        ("https://example.com/train.py", False),
        ("train.py\nprint(1)", False),
    ],
)
def test_only_what_looks_like_a_path_is_read_from_the_sandbox(script, path):
    assert is_path(script) is path


class NoSandbox:
    """A sandbox that cannot start (counting the calls that waited for it)."""

    def __init__(self) -> None:
        self.asked = 0

    async def client(self) -> SandboxClient:
        self.asked += 1
        raise ToolError("the sandbox could not start: Payment required (HTTP 402)")


async def test_an_inline_one_line_job_script_never_waits_for_the_sandbox(tmp_path):
    env = sandbox_env(tmp_path / "work", tmp_path / "home")
    env.sandbox = NoSandbox()
    args = JobArgs.model_validate({"operation": "run", "script": "print('hello from a job')"})
    assert (await sandbox_script(args, env)).script == "print('hello from a job')"
    path = JobArgs.model_validate({"operation": "run", "script": "train.py"})
    with pytest.raises(ToolError, match="could not start"):
        await sandbox_script(path, env)
    assert env.sandbox.asked == 1  # the path only
    assert jobs_tool.script_warnings({"operation": "run", "script": "print('hi')"}, env) == []
