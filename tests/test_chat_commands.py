"""The chat habits of the original's users: `yolo` at an approval, /resume, /clear, /effort, /model, bare
`exit`/`quit`/`:q`, and a prompt that appears before litellm has loaded. Real `ml-intern` processes on a
pseudo-terminal against the scripted local model server; the helpers' rules in process at the end."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import UserError
from ml_intern.graph.context import RunContext
from ml_intern.session.locks import ThreadBusy, ThreadLocks
from ml_intern.session.opening import SessionOpening
from ml_intern.session.session import open_session
from ml_intern.terminal.asking import ApprovalQuestions
from ml_intern.terminal.cards import approval_card, approval_decision
from ml_intern.terminal.commands import SlashCommands
from ml_intern.terminal.foreground import Foreground
from ml_intern.terminal.tables import effort_text, help_table
from ml_intern.terminal.thread_commands import chosen_thread, resume_rows
from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import Sandbox
from tests.harness_cli import MODEL, saved_messages, seed_thread, thread_rows
from tests.harness_terminal import PROMPT_SHOWN, Terminal, terminal_env

ROUTER_MODEL = "org/model:novita"  # a Hugging Face router id: reasoning effort is sent in the request body


@pytest.fixture
def chat_env(subprocess_env: dict[str, str], llm_server: ScriptedLLMServer) -> dict[str, str]:
    return terminal_env(subprocess_env, llm_server.url)


# ---- sessions ---------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_the_prompt_appears_before_litellm_has_loaded(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.text("Hello there."))
    term = Terminal(chat_env, "-m", MODEL)
    assert f"ml-intern · {MODEL}" in term.prompt()
    assert "Hello there." in term.send("hi")  # typed at once: the session finishes opening, then answers
    term.child.sendline("exit")
    assert term.exit_code() == 0
    assert "error" not in term.output()
    log = (sandbox.ml_intern_home / "logs" / "ml-intern.log").read_text()
    assert "chat prompt shown; litellm loaded: False" in log  # the time it takes: bench/chat_start.py


@pytest.mark.e2e
def test_yolo_at_an_approval_approves_it_and_every_later_call(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    def marker(name: str) -> dict[str, str]:  # writing to ~/.* needs approval by default
        return {"command": f"echo {name} > ~/.{name}"}

    llm_server.push(
        script.tool_call("bash", marker("one"), id="y1"),
        script.tool_call("bash", marker("two"), id="y2"),
        script.text("Both written."),
    )
    config = sandbox.root / "config.json"  # approval is under test, not the sandbox: markers land in HOME
    config.write_text('{"bash": {"confine": "off"}}')
    term = Terminal({**chat_env, "ML_INTERN_CONFIG": str(config)}, "-m", MODEL)
    term.prompt()
    asked = term.send("write the markers")
    assert "approval needed: bash" in asked and "yolo approve" in asked
    after = term.send("yolo")
    assert "approving every call from now on" in after and "auto-approved (yolo): bash" in after
    assert "Both written." in after
    assert "yolo" in term.send("/status")
    term.child.sendline("quit")
    assert term.exit_code() == 0
    assert (sandbox.home / ".one").read_text() == "one\n" and (sandbox.home / ".two").read_text() == "two\n"
    answers = [m for r in llm_server.requests for m in r["messages"] if m.get("role") == "tool"]
    assert answers and not any("rejected" in str(m["content"]) for m in answers)


@pytest.mark.e2e
async def test_resume_switches_the_chat_to_another_thread(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    await seed_thread("aaaa00000001", "tell me about the first topic", ["The first topic is tides."])
    await seed_thread("bbbb00000002", "tell me about the second topic", ["The second topic is wind."])
    llm_server.push(script.text("We talked about tides."), script.text("We talked about wind."))
    term = Terminal(chat_env, "-m", MODEL)
    term.prompt()
    term.child.sendline("/resume")
    listed = term.wait_for("pick a number (blank to cancel)")
    assert listed.index("1. ") < listed.index("bbbb0000") < listed.index("2. ") < listed.index("aaaa0000")
    assert "resume cancelled" in term.send("")  # newest first, numbered; blank: nothing changes
    term.child.sendline("/resume")
    term.wait_for("pick a number")
    switched = term.send("2")
    assert "thread aaaa00000001" in switched and "resumed: 1 turn(s) so far" in switched
    assert "tides" in term.send("what did we talk about?")
    assert "thread bbbb00000002" in term.send("/resume bbbb")
    assert "no thread number 7" in term.send("/resume 7")
    assert "wind" in term.send("and here?")
    term.child.sendline(":q")
    assert term.exit_code() == 0

    first, second = llm_server.requests
    assert "first topic" in json.dumps(first["messages"]) and "second topic" not in json.dumps(
        first["messages"]
    )
    assert "second topic" in json.dumps(second["messages"])
    rows = {row["thread_id"]: row["turns"] for row in thread_rows(sandbox)}
    assert rows == {"aaaa00000001": 2, "bbbb00000002": 2}  # the chat's own empty thread was never saved
    humans = [m.text for m in await saved_messages(sandbox, "aaaa00000001") if m.type == "human"]
    assert humans == ["tell me about the first topic", "what did we talk about?"]


@pytest.mark.e2e
def test_effort_clear_and_model_in_a_chat_on_a_router_model(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(script.text("One."), script.text("Two."), script.text("Three."), script.text("OK"))
    env = {**chat_env, "HF_ROUTER_URL": llm_server.url, "HF_TOKEN": "hf_chattoken123"}
    term = Terminal(env, "-m", ROUTER_MODEL)
    term.prompt()
    assert "One." in term.send("first")
    assert "reasoning effort: low" in term.send("/effort low")
    assert "Two." in term.send("second")
    shown = term.send("/effort")
    assert f"reasoning effort: low (sent to {ROUTER_MODEL}: low)" in shown
    assert "unknown reasoning effort 'hot'" in term.send("/effort hot")
    assert "reasoning effort: off" in term.send("/effort off")
    assert "Three." in term.send("third")
    assert "effort     off" in term.send("/status")
    overview = term.send("/model")
    assert f"current model: {ROUTER_MODEL}" in overview and "moonshotai/Kimi-K2.6:novita" in overview
    assert "model switched to org/other:fastest (effort: off)" in term.send("/model org/other:fastest")
    term.child.sendline("/clear")
    term.child.expect_exact("\x1b[2J")  # the screen is cleared, then a new thread begins
    assert "new thread" in term.prompt()
    term.child.sendline("exit")
    assert term.exit_code() == 0

    efforts = [request.get("reasoning_effort") for request in llm_server.requests]
    assert efforts == ["high", "low", None, None]  # the config's default, /effort low, off, the /model check
    assert llm_server.requests[-1]["model"] == "org/other:fastest"
    assert "hf_chattoken123" not in term.output()


@pytest.mark.e2e
def test_a_session_that_cannot_open_ends_the_chat_with_one_line(chat_env: dict[str, str]) -> None:
    term = Terminal(chat_env, "-m", MODEL, "--tools", "bogus")
    assert term.exit_code() == 2
    out = term.output()
    assert out.count("unknown tool(s) bogus") == 1 and "Traceback" not in out


@pytest.mark.e2e
def test_a_failed_opening_is_told_when_the_first_line_waits_for_it(chat_env: dict[str, str]) -> None:
    term = Terminal(chat_env, "-m", MODEL, "--tools", "bogus")
    index = term.child.expect_exact([PROMPT_SHOWN, "unknown tool(s)"])
    if index == 0:  # the prompt came first: a line typed now meets the failure
        term.child.sendline("hi")
    assert term.exit_code() == 2


# ---- in process -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "approved", "feedback", "all_from_now"),
    [
        ("y", True, "", False),
        ("Yes", True, "", False),
        ("yolo", True, "", True),
        ("YOLO ", True, "", True),
        ("a", True, "", True),
        ("n", False, "", False),
        ("no", False, "", False),
        ("use the workdir instead", False, "use the workdir instead", False),
    ],
)
def test_approval_answers_mean_what_they_meant_in_the_original(
    answer: str, approved: bool, feedback: str, all_from_now: bool
) -> None:
    decision, approve_all = approval_decision(answer)
    assert decision == {"approved": approved, "feedback": feedback} and approve_all is all_from_now


def thread_row(thread_id: str, title: str = "a title") -> SimpleNamespace:
    return SimpleNamespace(thread_id=thread_id, updated_at=0.0, turns=3, model=MODEL, title=title)


def test_a_resume_answer_is_a_number_of_the_list_or_an_id_prefix() -> None:
    rows = [thread_row("abc123456789"), thread_row("def123456789")]
    assert chosen_thread("2", rows) == "def123456789"
    assert chosen_thread("abc1", rows) == "abc123456789"[:4]
    assert chosen_thread("20261205", rows) == "20261205"  # digits beyond the list: an id prefix
    with pytest.raises(UserError, match="no thread number 3"):
        chosen_thread("3", rows)


def test_the_resume_list_shows_titles_as_typed() -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(resume_rows([thread_row("abc123456789", "fix [red]x\x1b[2J")]))
    out = console.file.getvalue()
    assert out.startswith("  1. ") and "abc12345 " in out and "fix [red]x\\x1b[2J" in out


def test_help_lists_the_original_commands_and_effort_says_what_was_refused() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(help_table())
    for command in ("/clear", "/effort [LEVEL]", "/resume [N|ID]", "exit, quit"):
        assert command in console.file.getvalue()
    report = effort_text("m", "max", "high", {"max": "high"}).plain
    assert report.splitlines()[:2] == [
        "reasoning effort: max (sent to m: high)",
        "  m refused max: uses high",
    ]


def test_yolo_mode_from_the_config_shows_in_the_chat_and_yolo_off_ends_it_for_the_graph() -> None:
    from ml_intern.graph.context import RunContext
    from ml_intern.terminal.asking import ApprovalQuestions
    from ml_intern.terminal.foreground import Foreground

    questions = ApprovalQuestions(Console(file=io.StringIO()), Foreground())
    questions.session = SimpleNamespace(ctx=RunContext(approval="yolo"))  # type: ignore[assignment]
    assert questions.yolo  # config yolo_mode: the chat says yolo, /status too
    questions.yolo = False  # /yolo
    assert not questions.yolo and questions.session.ctx.approval == "ask"
    questions.yolo = True  # "yolo" at a question: the questions approve, each with its line
    assert questions.yolo and questions.session.ctx.approval == "ask"


async def test_leaving_while_the_session_is_prepared_does_not_wait_for_it(tmp_path: Path) -> None:
    opened: list[Any] = []

    async def prepare(session: Any) -> None:  # e.g. a resumed thread's HF token prompt, never answered
        session.locks.take("aaaa00000001")
        opened.append(session)
        await asyncio.Event().wait()

    opening = SessionOpening(tmp_path / "threads.db", prepare)
    opening.start(warm_model=False)
    assert opening.task is not None
    try:
        while not opened:
            await asyncio.sleep(0.01)
        assert await asyncio.wait_for(opening.settle(), 5) is None  # Ctrl-C or `exit` during "starting…"
        assert opened[0].locks.current is None  # what the preparation began is let go
    finally:
        opening.task.cancel()  # a failing test must not hang
        await asyncio.wait({opening.task})
        await opening.stack.aclose()


class LoadingModel:
    """An opening whose litellm is still loading (SessionOpening's model_loaded/models_loaded)."""

    def __init__(self) -> None:
        self.loaded = asyncio.Event()

    @property
    def models_loaded(self) -> bool:
        return self.loaded.is_set()

    async def model_loaded(self) -> None:
        await self.loaded.wait()


async def test_a_model_command_waits_for_litellm_off_the_event_loop_and_ctrl_c_ends_the_wait() -> None:
    console, foreground, opening, compacted = Console(file=io.StringIO()), Foreground(), LoadingModel(), []

    async def compact() -> None:  # /compact reaches the chat model: litellm must be loaded first
        compacted.append(True)

    async def follow(approval: dict[str, Any]) -> None: ...

    questions = ApprovalQuestions(console, foreground)
    commands = SlashCommands(console, foreground, questions, follow, opening)  # type: ignore[arg-type]
    commands.session = SimpleNamespace(ctx=SimpleNamespace(model=MODEL), compact=compact)  # type: ignore[assignment]
    await asyncio.wait_for(commands.run("/yolo"), 1)  # never touches the model: at once
    waiting = asyncio.ensure_future(commands.run("/compact"))
    await asyncio.sleep(0.05)
    assert not waiting.done() and not compacted  # the loop runs (spinner, Ctrl-C) while litellm loads
    foreground.on_sigint()
    await asyncio.wait_for(waiting, 1)
    assert "/compact cancelled" in console.file.getvalue() and not compacted
    opening.loaded.set()
    await asyncio.wait_for(commands.run("/compact"), 1)
    assert compacted == [True]


def test_an_approval_card_shows_the_arguments_under_our_names() -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    args = {"operation": "run", "command": ["python", "train.py"], "flavor": "h200x8", "timeout": "10h"}
    console.print(approval_card({"name": "hf_jobs", "args": args, "reason": "GPU job"}, 1, 1))
    assert "hardware_flavor: h200x8 · timeout: 10h" in console.file.getvalue()  # `flavor`: the original's


class RecordedServices:
    """The services a chat began with: the MCP servers they started are stopped by `aclose`."""

    def __init__(self) -> None:
        self.config, self.tools, self.closed = AgentConfig(), [], False

    async def aclose(self) -> None:
        self.closed = True


async def test_resume_closes_the_services_of_the_model_it_leaves_and_keeps_them_when_busy(
    tmp_path: Path,
) -> None:
    async with open_session(tmp_path / "threads.db") as session:
        session.environ = {"VLLM_BASE_URL": "http://127.0.0.1:9/v1"}
        for thread_id, model in (("aaaa00000001", "vllm/other"), ("bbbb00000002", "vllm/third")):
            await session.threads.start_turn(thread_id, "a title", model, str(tmp_path))
        first = RecordedServices()
        await session.begin(RunContext(model=MODEL, workdir=str(tmp_path), services=first))  # type: ignore[arg-type]
        elsewhere = ThreadLocks(tmp_path)
        elsewhere.take("bbbb00000002")  # another chat works on it
        with pytest.raises(ThreadBusy):
            await session.resume_thread("bbbb")
        assert session.ctx is not None and session.ctx.services is first and not first.closed
        elsewhere.release()
        row = await session.resume_thread("aaaa")
        assert row.thread_id == session.thread_id == "aaaa00000001" and session.ctx.model == "vllm/other"
        assert first.closed  # the MCP servers of the model left behind are stopped
        await session.close()
