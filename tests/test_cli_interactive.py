"""The interactive chat end to end: a real `ml-intern` on a pseudo-terminal (pexpect), litellm talking HTTP to
the scripted local server. Each process imports litellm (~5 s), so each session covers several behaviours.
The in-process tests at the end cover the rendering helpers."""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from ml_intern.graph import events
from ml_intern.session.pending import ABANDONED, CANCELLED, INTERRUPTED
from ml_intern.terminal.cards import approval_card
from ml_intern.terminal.formats import JsonOutput, TextOutput
from ml_intern.terminal.live import ChatView, MarkdownBlocks, plan_checklist
from ml_intern.terminal.tables import threads_table
from tests.fakes import llm_server as script
from tests.fakes.hub_server import USER, FakeHub
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import Sandbox, installed_cli
from tests.harness_cli import MODEL, saved_messages, seed_thread, thread_rows
from tests.harness_terminal import Terminal, terminal_env


@pytest.fixture
def chat_env(subprocess_env: dict[str, str], llm_server: ScriptedLLMServer) -> dict[str, str]:
    """The subprocess environment on a terminal, with vllm/ models served by the scripted server."""
    return terminal_env(subprocess_env, llm_server.url)


def tool_answer(request: dict[str, Any], call_id: str) -> str:
    """The content of the tool message answering `call_id` in a request the model server received."""
    [content] = [m["content"] for m in request["messages"] if m.get("tool_call_id") == call_id]
    return content


def processes_running(command: str) -> list[int]:
    """Pids whose command line is exactly `command` (split on spaces)."""
    wanted = command.split().__repr__()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and argv.__repr__() == wanted:
            pids.append(int(entry.name))
    return pids


def wait_until(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


# ---- sessions ---------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_chat_renders_a_turn_and_runs_the_slash_commands(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    answer = "# Result\n\nThe command printed **hi**.\n\n```python\nprint('hi')\n```\n\nDone."
    llm_server.push(
        script.tool_call("bash", {"command": "echo hi-from-bash"}, id="b1"),
        script.text(answer),
        script.error(404, "The model `missing` does not exist"),  # /model vllm/missing: its check call
        script.text("OK"),  # /model vllm/second: its check call
        script.text("- the user asked the agent to say hi; it ran echo"),  # /compact: the summary
        script.text("Still here."),
    )
    term = Terminal(chat_env, "-m", MODEL)
    banner = term.prompt()
    assert MODEL in banner and str(sandbox.workdir) in banner
    shown = term.send("say hi")
    [row] = thread_rows(sandbox)
    thread_id = row["thread_id"]
    assert f"thread {thread_id}" in banner
    assert '▸ bash  command="echo hi-from-bash"' in shown and "✓ hi-from-bash" in shown
    assert "print('hi')" in shown and "```" not in shown and "**" not in shown  # rendered as Markdown
    assert shown.index("hi-from-bash") < shown.index("Result") < shown.index("Done.")
    status = term.send("/status")
    assert re.search(rf"model\s+{MODEL}", status) and re.search(rf"thread\s+{thread_id}", status)
    assert re.search(r"turns\s+1\b", status) and re.search(r"tokens\s+[\d,]+ in", status)

    failed = term.send("/model vllm/missing")
    assert "error:" in failed and "missing was not found" in failed and f"keeping {MODEL}" in failed
    assert "switched" in term.send("/model vllm/second")
    assert "compacted:" in term.send("/compact")
    assert "Still here." in term.send("and now?")
    listed = term.send("/threads")
    assert thread_id in listed and "say hi" in listed
    assert "/compact" in term.send("/help") and "unknown command /bogus" in term.send("/bogus")
    term.child.sendeof()
    assert term.exit_code() == 0
    assert f"continue with ml-intern resume {thread_id}" in term.output()
    history = (sandbox.ml_intern_home / "prompt_history").read_text()
    assert "+say hi" in history and "+/status" in history

    models = [request["model"] for request in llm_server.requests]
    assert models == ["scripted", "scripted", "missing", "second", "second", "second"]
    summary_request, last_request = llm_server.requests[4], llm_server.requests[5]
    assert "hi-from-bash" in json.dumps(summary_request["messages"])
    sent = [m["content"] for m in last_request["messages"][1:]]
    assert sent[0] == "say hi" and sent[1].startswith("[Summary of the earlier conversation]")
    assert sent[-1] == "and now?" and "echo hi-from-bash" not in json.dumps(last_request["messages"])
    [row] = thread_rows(sandbox)
    assert (row["turns"], row["model"], row["stop_reason"]) == (2, "vllm/second", "end_turn")


@pytest.mark.e2e
@pytest.mark.parametrize("leave", ["/quit", "/exit", "Ctrl-D"])
def test_the_chat_leaves_at_once_after_several_turns(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, leave: str
) -> None:
    llm_server.push(
        script.text("One."),
        script.tool_call("bash", {"command": "echo two"}, id="t2"),
        script.text("Two."),
        script.text("Three."),
    )
    term = Terminal(chat_env, "-m", MODEL)
    term.prompt()
    assert "One." in term.send("first")
    assert "Two." in term.send("second")
    assert "Three." in term.send("third")
    started = time.monotonic()
    if leave == "Ctrl-D":
        term.child.sendeof()
    else:
        term.child.sendline(leave)
    assert term.exit_code() == 0
    assert time.monotonic() - started < 5
    assert "error" not in term.output() and "ChatExit" not in term.output()


@pytest.mark.e2e
def test_chat_asks_before_calls_that_need_approval(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    def marker_call(name: str) -> tuple[str, dict[str, str]]:  # writing to ~/.* needs approval by default
        return ("bash", {"command": f"echo {name} > ~/.{name}"})

    llm_server.push(
        script.tool_call(*marker_call("one"), id="y1"),
        script.tool_call(*marker_call("two"), id="n1"),
        script.tool_call(*marker_call("three"), id="f1"),
        script.text("I will write it in the working directory instead."),
        script.tool_calls([marker_call("four"), marker_call("five")]),
        script.tool_call(*marker_call("six"), id="auto"),
        script.text("All markers written."),
        script.tool_call(*marker_call("seven"), id="c1"),
    )
    config = sandbox.root / "config.json"  # approval is under test, not the sandbox: markers land in HOME
    config.write_text('{"bash": {"confine": "off"}}')
    term = Terminal({**chat_env, "ML_INTERN_CONFIG": str(config)}, "-m", MODEL)
    term.prompt()
    asked = term.send("write the markers")
    assert (
        "approval needed: bash" in asked and "$ echo one > ~/.one" in asked and "yolo approve this" in asked
    )
    assert "approval needed: bash" in term.send("y") and (sandbox.home / ".one").read_text() == "one\n"
    assert "$ echo three > ~/.three" in term.send("n")
    assert "instead" in term.send("keep it inside the working directory")
    batch = term.send("now four, five and six")
    assert "approval needed 1/2: bash" in batch and "echo four" in batch
    after_all = term.send("a")
    assert "auto-approved (yolo): bash" in after_all and "All markers written." in after_all
    assert "yolo off" in term.send("/yolo")
    assert "$ echo seven > ~/.seven" in term.send("and seven")
    term.child.sendintr()  # at the approval question: cancels the turn
    assert "turn cancelled" in term.prompt()
    term.child.sendeof()
    assert term.exit_code() == 0

    markers = ("one", "two", "three", "four", "five", "six", "seven")
    assert [(sandbox.home / f".{name}").exists() for name in markers] == [
        True, False, False, True, True, True, False,
    ]  # fmt: skip
    [row] = thread_rows(sandbox)
    assert saved_history(sandbox, row["thread_id"])[-1] == ("tool", CANCELLED)
    assert row["stop_reason"] == "interrupted"
    rejected = tool_answer(llm_server.requests[2], "n1")
    assert "rejected" in rejected and "feedback" not in rejected.lower()
    assert "Their feedback: keep it inside the working directory" in tool_answer(llm_server.requests[3], "f1")


@pytest.mark.e2e
def test_ctrl_c_cancels_the_turn_and_stops_running_tools(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(
        script.tool_call("bash", {"command": "sleep 31.7"}, id="s1"),
        script.text("Yes, I am here."),
        script.delay(30, script.text("too late")),  # a model call cut short by Ctrl-C
    )
    term = Terminal(chat_env, "-m", MODEL)
    term.prompt()
    term.child.sendline("sleep for a while")
    term.wait_for("sleep 31.7")
    assert wait_until(lambda: processes_running("sleep 31.7")), "the sleep never started"
    started = time.monotonic()
    term.child.sendintr()
    shown = term.prompt()
    assert time.monotonic() - started < 10
    assert "interrupted: 1 tool call(s) stopped" in shown
    assert wait_until(lambda: not processes_running("sleep 31.7"), 5), "the sleep is still running"

    assert "Yes, I am here." in term.send("are you there?")
    assert tool_answer(llm_server.requests[1], "s1") == INTERRUPTED
    term.child.sendline("think slowly")
    wait_until(lambda: len(llm_server.requests) == 3)
    term.child.sendintr()
    assert "interrupted" in term.prompt()
    term.child.sendintr()
    term.child.sendintr()
    assert term.exit_code() == 130

    [row] = thread_rows(sandbox)
    messages = [m for m in saved_history(sandbox, row["thread_id"]) if m[0] == "tool"]
    assert messages == [("tool", INTERRUPTED)]
    assert row["turns"] == 3 and row["stop_reason"] == "interrupted"


def saved_history(sandbox: Sandbox, thread_id: str) -> list[tuple[str, str]]:
    import asyncio

    return [(m.type, m.text) for m in asyncio.run(saved_messages(sandbox, thread_id))]


@pytest.mark.e2e
def test_headless_ctrl_c_exits_130_and_says_how_to_resume(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.tool_call("bash", {"command": "sleep 31.8"}, id="h1"))
    term = Terminal(chat_env, "-m", MODEL, "sleep for a while")
    term.wait_for("sleep 31.8")
    assert wait_until(lambda: processes_running("sleep 31.8")), "the sleep never started"
    term.child.sendintr()
    assert term.exit_code() == 130
    [row] = thread_rows(sandbox)
    assert f"ml-intern resume {row['thread_id']} --continue" in term.output()
    assert "Traceback" not in term.output()
    assert wait_until(lambda: not processes_running("sleep 31.8"), 5)
    assert saved_history(sandbox, row["thread_id"])[-1] == ("tool", INTERRUPTED)


@pytest.mark.e2e
def test_an_approval_survives_quitting_and_is_asked_again_on_resume(
    chat_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(
        script.tool_call("bash", {"command": "echo kept > ~/.kept"}, id="r1"),
        script.text("The marker is written."),
        script.tool_call("bash", {"command": "echo dropped > ~/.dropped"}, id="r2"),
        script.text("Hi!"),
    )
    config = sandbox.root / "config.json"  # approval is under test, not the sandbox: the marker lands in HOME
    config.write_text('{"bash": {"confine": "off"}}')
    chat_env = {**chat_env, "ML_INTERN_CONFIG": str(config)}
    first = Terminal(chat_env, "-m", MODEL)
    first.prompt()
    assert "$ echo kept > ~/.kept" in first.send("write the marker")
    first.child.sendeof()
    assert first.exit_code() == 0
    [row] = thread_rows(sandbox)
    assert f"approval pending: answer it with ml-intern resume {row['thread_id']}" in first.output()
    assert not (sandbox.home / ".kept").exists()

    second = Terminal(chat_env, "resume")
    asked_again = second.prompt()
    assert "waiting for your answer" in asked_again and "$ echo kept > ~/.kept" in asked_again
    assert "The marker is written." in second.send("y")
    assert (sandbox.home / ".kept").read_text() == "kept\n"
    assert "$ echo dropped > ~/.dropped" in second.send("and another one")
    second.child.sendeof()
    assert second.exit_code() == 0

    done = subprocess.run(
        [str(installed_cli()), "resume", row["thread_id"][:6], "never mind, just say hi"],
        env=chat_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hi!\n" and not (sandbox.home / ".dropped").exists()
    assert tool_answer(llm_server.requests[3], "r2") == ABANDONED
    history = saved_history(sandbox, row["thread_id"])
    assert history[-3:] == [("tool", ABANDONED), ("human", "never mind, just say hi"), ("ai", "Hi!")]


@pytest.mark.e2e
def test_first_launch_offers_to_paste_a_hugging_face_token(
    chat_env: dict[str, str], sandbox: Sandbox
) -> None:
    with FakeHub(token="hf_goodtoken123") as hub:
        env = {**chat_env, "HF_ENDPOINT": hub.url}
        headless = subprocess.run(
            [str(installed_cli()), "-m", "huggingface/org/model", "hi"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert headless.returncode == 2 and "needs a Hugging Face token" in headless.stderr
        assert len(headless.stderr.strip().splitlines()) == 1 and not hub.requests

        term = Terminal(env, "-m", "huggingface/org/model")
        assert "needs an access token" in term.prompt()
        assert "did not accept the token" in term.send("hf_wrongtoken99")
        shown = term.send("hf_goodtoken123")
        assert (
            f"Logged in to Hugging Face as {USER}" in shown and "ml-intern · huggingface/org/model" in shown
        )
        term.child.sendeof()
        assert term.exit_code() == 0
        sent = [r.headers.get("authorization") for r in hub.find("GET", "/api/whoami-v2")]
    assert sent[0] == "Bearer hf_wrongtoken99" and set(sent[1:]) == {"Bearer hf_goodtoken123"}
    assert (sandbox.home / ".cache/huggingface/token").read_text().strip() == "hf_goodtoken123"
    assert "hf_wrongtoken99" not in term.output() and "hf_goodtoken123" not in term.output()


@pytest.mark.e2e
async def test_undo_rewinds_turns_from_the_command_line_and_the_chat(
    chat_env: dict[str, str], sandbox: Sandbox
) -> None:
    for prompt in ("first turn", "second turn", "third turn"):
        await seed_thread("undo00000001", prompt, [f"answer to {prompt}"])
    done = subprocess.run(
        [str(installed_cli()), "undo", "--output-format", "stream-json"],
        env=chat_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["type"] == "undo_complete"
    term = Terminal(chat_env, "resume", "undo0000")
    term.prompt()
    assert "second turn" in term.send("/undo")
    assert re.search(r"turns\s+1\b", term.send("/status"))
    term.child.sendeof()
    assert term.exit_code() == 0
    humans = [m.text for m in await saved_messages(sandbox, "undo00000001") if m.type == "human"]
    assert humans == ["first turn"]


@pytest.mark.e2e
def test_chat_without_a_terminal_says_how_to_run_headless(chat_env: dict[str, str]) -> None:
    done = subprocess.run([str(installed_cli())], env=chat_env, input="hi\n", capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        'ml-intern: error: the chat needs a terminal: give the task as an argument (or "-" to read stdin) '
        "to run headless"
    )


# ---- rendering, in process --------------------------------------------------------------------------------


def recording_console() -> Console:
    return Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)


def test_markdown_blocks_are_released_only_when_complete() -> None:
    blocks = MarkdownBlocks()
    assert blocks.feed("Intro para") == ""
    assert blocks.feed("graph.\n\n```py\nx = 1\n\ny = 2\n") == "Intro paragraph."  # the fence is open
    assert blocks.feed("```\nAfter") == "```py\nx = 1\n\ny = 2\n```"
    assert blocks.tail == "After" and blocks.flush() == "After" and blocks.tail == ""


def test_plan_output_is_drawn_as_a_checklist() -> None:
    console = recording_console()
    renderer = ChatView(console)
    plan = "Plan:\n- [x] load the data\n- [~] train\n- [ ] evaluate"
    renderer.event(events.tool_output("p", "plan_tool", plan, True))
    assert console.file.getvalue().splitlines() == [
        "  Plan:", "  ✔ load the data", "  ◐ train", "  ○ evaluate",
    ]  # fmt: skip
    styles = {span.style for span in plan_checklist(plan).spans}
    assert {"green", "yellow"} <= styles


def test_streamed_reply_is_printed_once_as_markdown() -> None:
    console = recording_console()
    renderer = ChatView(console)
    for piece in ("Some **bo", "ld** text.\n\n```python\nprint(1)\n", "```\n\nEnd."):
        renderer.event(events.assistant_chunk(piece))
    renderer.event(events.assistant_message("ignored: already streamed", 0))
    renderer.event(events.error("the model server went away"))
    out = console.file.getvalue()
    assert "Some bold text." in out and "print(1)" in out and out.count("End.") == 1
    assert "**" not in out and "```" not in out and "ignored" not in out
    assert out.rstrip().endswith("error: the model server went away")


def test_whole_replies_are_printed_and_notices_kept_when_not_streamed() -> None:
    console = recording_console()
    renderer = ChatView(console)
    renderer.event(events.processing(1))
    renderer.event(events.assistant_message("A *whole* reply.", 0))
    renderer.event(events.tool_log("bash", "compiling 3 files"))  # a tool's output: flashed in the spinner
    renderer.event(events.notice("model", "retrying in 2s"))  # the agent's own message: kept
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    assert lines == ["A whole reply.", "  model: retrying in 2s"]
    assert renderer.last_log == "compiling 3 files"


def test_the_chat_shows_the_sessions_own_events() -> None:
    console = recording_console()
    renderer = ChatView(console)
    for event in (
        events.ready("abc123", MODEL, 17, "/w"),
        events.tool_state_change("c1", "bash", "abandoned"),
        events.tool_state_change("c2", "bash", "approved"),
        events.interrupted("abc123", 1),
        events.turn_complete("abc123", "", "max_iterations", 7, {}, None),
        events.new_complete("def456", "abc123", 2),
    ):
        renderer.event(event)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    assert lines[:3] == [f"ml-intern · {MODEL}", "thread abc123 · /w", "tools: local"]
    assert lines[4:] == [
        "  ✗ bash abandoned",
        "interrupted: 1 tool call(s) stopped",
        "stopped after 7 model calls (the iteration cap): send a message to go on",
        "new thread def456",
    ]


def test_approval_cards_show_model_text_as_inert_text() -> None:
    command = "echo \x1b[2J\u202egnp.exe"  # clears the screen; shows the name reversed
    call = {"id": "c1", "name": "bash", "reason": "asks \x07 twice", "args": {"command": command}}
    console = recording_console()
    console.print(approval_card(call, 1, 1))
    out = console.file.getvalue()
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "$ echo \\x1b[2J\\u202egnp.exe" in out and "asks \\x07 twice" in out


def test_headless_text_prints_an_error_once_and_notices_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    output = TextOutput()
    for event in (
        events.thread_started("abc123", MODEL),
        events.notice("budget", "80% of the turn's budget spent"),
        events.error("the model stopped: too long"),  # a turn's error, followed by more: printed
        events.turn_complete("abc123", "Done.", "context_overflow", 2, {"input_tokens": 10}, None),
        events.error("cannot reach the model server"),  # the run's last word: its exit line says it
        events.shutdown(),
    ):
        output.event(event)
    out, err = capsys.readouterr()
    assert out == "Done.\n"
    assert err.splitlines() == [
        f"thread abc123 · {MODEL}",
        "budget: 80% of the turn's budget spent",
        "error: the model stopped: too long",
        "usage: 10 tokens in (0 cached), 0 out, 0 model call(s), cost unknown",
        "stopped (context_overflow): finish with ml-intern resume abc123 --continue",
    ]


def test_headless_json_prints_one_summary(capsys: pytest.CaptureFixture[str]) -> None:
    output = JsonOutput()
    output.event(events.thread_started("abc123", MODEL))
    output.event(events.turn_complete("abc123", "Done.", "end_turn", 1, {"input_tokens": 10}, 0.5))
    output.event(events.shutdown())
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "thread_id": "abc123", "final_response": "Done.", "stop_reason": "end_turn", "iterations": 1,
        "usage": {"input_tokens": 10}, "cost_usd": 0.5,
    }  # fmt: skip
    assert err == ""


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ({"name": "bash", "args": {"command": "rm -rf ~/old"}}, ["$ rm -rf ~/old"]),
        (
            {"name": "hf_jobs", "args": {"operation": "run", "script": "import torch\nprint(1)",
                                         "hardware_flavor": "a10g-large", "timeout": "2h"}},
            ["hardware_flavor: a10g-large · timeout: 2h", "script:", "import torch", "print(1)"],
        ),
        (
            {"name": "hf_repo_files", "args": {"operation": "upload", "repo_id": "me/m", "path": "a.md",
                                               "content": "# Card\n" + "line\n" * 30}},
            ["content:", "# Card", "… (+16 lines)"],
        ),
    ],
    ids=["bash", "hf_jobs", "upload"],
)  # fmt: skip
def test_approval_cards_show_what_matters(call: dict[str, Any], expected: list[str]) -> None:
    console = recording_console()
    console.print(approval_card({**call, "id": "c1", "reason": "why it needs approval"}, 1, 1))
    out = console.file.getvalue()
    assert out.startswith(f"approval needed: {call['name']}\n  why it needs approval\n")
    for text in expected:
        assert text in out


def test_thread_titles_are_shown_as_typed_never_as_markup() -> None:
    row = SimpleNamespace(
        thread_id="abc123", updated_at=0.0, title="fix [/b] [red]x", turns=2,
        model=MODEL, workdir="/w", cost_usd=None, host="gpu-box",
    )  # fmt: skip
    console = recording_console()
    console.print(threads_table([row], lambda timestamp: "then", current="abc123"))
    assert "fix [/b] [red]x" in console.file.getvalue()
