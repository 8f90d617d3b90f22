"""Model and provider faults through the real path: ChatLiteLLM -> litellm -> HTTP -> a scripted local server.

`run_real_turn` (tests/harness_litellm.py) drives the graph in-process with the real litellm client; the last
tests run `ml-intern` processes (tests/harness_cli.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.types import Overwrite

from ml_intern.errors import UserError
from ml_intern.graph.messages import NOT_EXECUTED
from ml_intern.model.errors import explain_model_error
from ml_intern.nodes.compact import SUMMARY_PROMPT
from ml_intern.nodes.doom_check import STALL_GUARD, TRUNCATED
from ml_intern.session.options import RunOptions
from ml_intern.session.session import open_session
from ml_intern.terminal.headless import run_headless
from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.fakes.resetting_proxy import ResettingProxy
from tests.harness import Sandbox, installed_cli
from tests.harness_cli import MODEL, QUICK_RETRIES, Workspace, json_events
from tests.harness_litellm import (
    CONTEXT_OVERFLOW,
    THREAD,
    agent_config,
    run_real_turn,
    sent,
    unanswered_calls,
)

SDK_RETRIES = (
    "BUG: the OpenAI SDK under litellm retries 429/5xx/timeouts/dropped connections itself (2 hidden retries "
    "with its own backoff): services.make_chat_model passes max_retries=0 to ChatLiteLLM only, not "
    "model_kwargs={'max_retries': 0}, so model/retry.py never sees these faults (no tool_log, config "
    "`retries` ignored, up to 3x the requests)"
)


# ---- transient faults are retried with backoff, visibly --------------------------------------------------

TRANSIENT = [  # id, first answer, stream, minimum seconds before the retry
    pytest.param(script.error(429, "Rate limit reached", {"Retry-After": "0.4"}), False, 0.4, id="429"),
    pytest.param(script.error(500, "internal error"), False, 0.0, id="500"),
    pytest.param(script.error(502, "bad gateway"), False, 0.0, id="502"),
    pytest.param(script.error(503, "overloaded"), False, 0.0, id="503"),
    pytest.param(script.broken_stream("The answ"), False, 0.0, id="truncated-body"),
    pytest.param(script.broken_stream("The answ"), True, 0.0, id="broken-stream"),
]
HIDDEN = ("429", "500", "502", "503", "truncated-body")


@pytest.mark.parametrize(
    ("fault", "stream", "min_wait"),
    [pytest.param(*p.values, id=p.id) if p.id in HIDDEN else p for p in TRANSIENT],
)
async def test_transient_fault_is_retried_once_with_a_log_line(
    llm_server: ScriptedLLMServer, sandbox: Sandbox, fault: dict, stream: bool, min_wait: float
) -> None:
    llm_server.push(fault, script.text("The answer is 42."))
    turn = await run_real_turn(llm_server.url, sandbox, "what is the answer?", stream=stream)
    assert turn.error is None and turn.outcome.final_response == "The answer is 42."
    assert [m.content for m in turn.messages] == ["what is the answer?", "The answer is 42."]  # no partial
    [log] = turn.logs()
    assert "retry 1/2" in log
    assert len(llm_server.requests) == 2
    assert llm_server.request_times[1] - llm_server.request_times[0] >= min_wait


@pytest.mark.llm_script_leftovers
async def test_retries_stop_after_the_configured_attempts(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(*[script.error(503, f"overloaded {i}") for i in range(9)])
    turn = await run_real_turn(llm_server.url, sandbox, "hi")
    assert type(turn.error).__name__ == "ServiceUnavailableError"
    assert (len(llm_server.requests), len(turn.logs())) == (3, 2)
    assert [m.content for m in turn.messages] == ["hi"]  # nothing half-written: the turn can be continued


async def test_timeout_is_retried(llm_server: ScriptedLLMServer, sandbox: Sandbox) -> None:
    config = {**agent_config(), "request_timeout": 0.5}
    llm_server.push(script.delay(3, script.text("too late")), script.text("on time"))
    turn = await run_real_turn(llm_server.url, sandbox, "hi", config=config)
    assert turn.outcome.final_response == "on time"
    [log] = turn.logs()
    assert "Timeout" in log


async def test_connection_reset_is_retried(llm_server: ScriptedLLMServer, sandbox: Sandbox) -> None:
    llm_server.push(script.text("after the reset"))
    proxy = ResettingProxy(llm_server.url, resets=1)
    try:
        turn = await run_real_turn(proxy.url, sandbox, "hi")
    finally:
        proxy.close()
    assert turn.outcome.final_response == "after the reset"
    assert proxy.connections == 2
    [log] = turn.logs()
    assert "retry 1/2" in log


async def test_connection_refused_is_retried_then_explained_in_one_line(sandbox: Sandbox) -> None:
    turn = await run_real_turn("http://127.0.0.1:9/v1", sandbox, "hi")
    assert turn.error is not None and len(turn.logs()) == QUICK_RETRIES["attempts"]
    message, code = explain_model_error(turn.error, MODEL)
    assert code == 1 and message.startswith(f"cannot reach the model server for {MODEL}")
    assert "\n" not in message


# ---- permanent faults fail at once, naming what to fix ---------------------------------------------------

PERMANENT = [  # status, provider message, words of our line
    pytest.param(401, "Incorrect API key provided: sk-loc****", "check its API key", id="401"),
    pytest.param(403, "Your key may not use this model", "permissions", id="403"),
    pytest.param(404, "The model `scripted` does not exist", "was not found", id="404"),
    pytest.param(402, "Insufficient credits: add credits to your account", "credits", id="402"),
]


@pytest.mark.parametrize(("status", "message", "words"), PERMANENT)
async def test_permanent_fault_is_not_retried_and_names_the_setting(
    llm_server: ScriptedLLMServer, sandbox: Sandbox, status: int, message: str, words: str
) -> None:
    llm_server.push(script.error(status, message))
    turn = await run_real_turn(llm_server.url, sandbox, "hi")
    assert turn.error is not None and turn.logs() == []
    assert len(llm_server.requests) == 1
    line, code = explain_model_error(turn.error, MODEL)
    assert (code, "\n" in line) == (2, False)
    assert words in line and MODEL in line


async def test_rejected_key_line_names_the_variable_to_set(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.error(401, "Incorrect API key provided"))
    turn = await run_real_turn(llm_server.url, sandbox, "hi")
    line, _ = explain_model_error(turn.error, MODEL)
    assert "VLLM_API_KEY" in line


# ---- context window ---------------------------------------------------------------------------------------

SMALL_TAIL = {"compaction": {"keep_recent_tokens": 10}}  # a forced compaction may cut all but the last step


async def test_context_window_exceeded_compacts_then_retries_the_same_step(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(
        script.tool_call("bash", {"command": "echo one"}, id="c1"),
        script.tool_call("bash", {"command": "echo two"}, id="c2"),
        script.error(400, CONTEXT_OVERFLOW),
        script.text("- ran echo one and echo two"),
        script.tool_call("bash", {"command": "touch after_compaction"}, id="c3"),
        script.text("done"),
    )
    turn = await run_real_turn(llm_server.url, sandbox, "run two echos", config=agent_config(**SMALL_TAIL))
    assert (turn.outcome.stop_reason, turn.outcome.final_response) == ("end_turn", "done")
    summary_request, retried = llm_server.requests[3], llm_server.requests[4]
    assert summary_request["messages"][0]["content"] == SUMMARY_PROMPT
    assert sent(retried)[0] == ("user", "run two echos")
    assert sent(retried)[1][1].startswith("[Summary of the earlier conversation]\n- ran echo one")
    assert (sandbox.workdir / "after_compaction").exists()
    assert [e["type"] for e in turn.events].count("compacted") == 1
    assert len(llm_server.requests) == 6


async def test_context_overflow_that_compaction_cannot_fix_ends_the_turn(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.error(400, CONTEXT_OVERFLOW))
    turn = await run_real_turn(llm_server.url, sandbox, "a prompt too long for the model")
    assert turn.outcome.stop_reason == "context_overflow"
    assert len(llm_server.requests) == 1
    assert any(e["type"] == "error" for e in turn.events)


async def test_context_overflow_again_after_compaction_ends_the_turn(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(
        script.tool_call("bash", {"command": "echo one"}, id="c1"),
        script.error(400, CONTEXT_OVERFLOW),
        script.text("- ran echo one"),
        script.error(400, CONTEXT_OVERFLOW),
    )
    turn = await run_real_turn(llm_server.url, sandbox, "go", config=agent_config(**SMALL_TAIL))
    assert turn.outcome.stop_reason == "context_overflow"
    assert len(llm_server.requests) == 4  # call, overflow, summary, overflow: no loop


# ---- broken tool calls -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(False, id="whole"),
        pytest.param(True, id="streamed"),
    ],
)
async def test_malformed_tool_call_is_not_run_and_the_model_is_told(
    llm_server: ScriptedLLMServer, sandbox: Sandbox, stream: bool
) -> None:
    llm_server.push(
        script.raw_tool_call("bash", '{"command": "touch made_first', id="m1"),
        script.raw_tool_call("bash", '{"command": "touch made_second"', id="m2"),
        script.text("I will send smaller calls."),
    )
    turn = await run_real_turn(llm_server.url, sandbox, "make files", stream=stream)
    assert turn.outcome.stop_reason == "end_turn"
    assert sorted(p.name for p in sandbox.workdir.iterdir()) == []
    first = llm_server.requests[1]["messages"][-1]
    assert (first["role"], first["tool_call_id"]) == ("tool", "m1")
    assert "not valid JSON" in first["content"] and "Retry with valid, smaller arguments" in first["content"]
    second = llm_server.requests[2]["messages"][-1]
    assert second["tool_call_id"] == "m2" and "change strategy" in second["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_calls_cut_off_by_the_length_limit_are_dropped(
    llm_server: ScriptedLLMServer, sandbox: Sandbox, stream: bool
) -> None:
    cut = script.tool_calls(
        [("bash", {"command": "touch cut_one"}), ("write", {"path": "big.txt", "content": "x" * 40})],
        finish_reason="length",
    )  # the arguments are valid JSON: a streamed cut-off reply can look whole
    llm_server.push(cut, script.text("I will split the file into parts."))
    turn = await run_real_turn(llm_server.url, sandbox, "write it", stream=stream, tools=("bash", "write"))
    assert turn.outcome.stop_reason == "end_turn"
    assert list(sandbox.workdir.iterdir()) == []
    results = llm_server.requests[1]["messages"][-2:]
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in results] == [
        ("tool", "call_1_0", TRUNCATED), ("tool", "call_1_1", TRUNCATED),
    ]  # fmt: skip
    assert turn.logs("doom_check") == ["reply truncated: dropped bash, write"]


async def test_dangling_tool_calls_anywhere_in_history_are_answered_before_the_next_call(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.text("first answer"), script.text("second answer"))
    await run_real_turn(llm_server.url, sandbox, "first")
    call = {"name": "bash", "type": "tool_call"}
    edited = [
        HumanMessage("first", id="h1"),
        AIMessage("", id="a1", tool_calls=[{**call, "args": {"command": "echo x"}, "id": "d1"},
                                           {**call, "args": {"command": "echo y"}, "id": "d2"}]),
        ToolMessage("x", tool_call_id="d1", name="bash", id="r1"),
        AIMessage("", id="a2", tool_calls=[{**call, "args": {"command": "echo z"}, "id": "d3"}]),
        AIMessage("first answer", id="a3"),
    ]  # fmt: skip  # a checkpoint edited by hand: d2 and d3 never got results
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        config = {"configurable": {"thread_id": THREAD}}
        await session.app.aupdate_state(config, {"messages": Overwrite(edited)}, as_node="call_model")
    turn = await run_real_turn(llm_server.url, sandbox, "second")
    assert turn.outcome.final_response == "second answer"
    request = llm_server.requests[1]
    assert unanswered_calls(request) == []
    repaired = {m["tool_call_id"]: m["content"] for m in request["messages"] if m["role"] == "tool"}
    assert repaired == {"d1": "x", "d2": NOT_EXECUTED, "d3": NOT_EXECUTED}


# ---- stalls and loops --------------------------------------------------------------------------------------


async def test_empty_reply_is_nudged_once_then_the_turn_stalls(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.text(""), script.text(""))
    turn = await run_real_turn(llm_server.url, sandbox, "answer me")
    assert turn.outcome.stop_reason == "stalled"
    assert sent(llm_server.requests[1])[-1] == ("user", STALL_GUARD)
    assert len(llm_server.requests) == 2


async def test_same_text_three_times_is_a_stall(llm_server: ScriptedLLMServer, sandbox: Sandbox) -> None:
    todos = [{"id": "1", "content": "train", "status": "in_progress"}, {"id": "2", "content": "eval",
             "status": "pending"}]  # fmt: skip  # open plan items keep the turn going after a text reply
    llm_server.push(script.tool_call("plan_tool", {"todos": todos}), *[script.text("Working on it.")] * 4)
    turn = await run_real_turn(llm_server.url, sandbox, "train and eval", tools=("plan_tool",))
    assert turn.outcome.stop_reason == "stalled"
    assert sent(llm_server.requests[4])[-1] == ("user", STALL_GUARD)  # after the third identical reply
    assert len(llm_server.requests) == 5


async def test_identical_calls_with_identical_results_end_as_a_doom_loop(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    repeat = {"command": "echo run >> runs.log; echo same"}
    llm_server.push(*[script.tool_call("bash", repeat) for _ in range(6)])
    turn = await run_real_turn(llm_server.url, sandbox, "check it")
    assert turn.outcome.stop_reason == "doom_loop"
    assert (sandbox.workdir / "runs.log").read_text().count("run") == 3  # calls 4-6 were blocked
    assert len(turn.logs("doom_check")) == 2


# ---- the CLI when the model stays unreachable --------------------------------------------------------------


@pytest.fixture(scope="module")
def overloaded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, int]:
    """One stream-json run against a server that answers 503 every time: (process, requests served)."""
    with ScriptedLLMServer(*[script.error(503, "upstream overloaded")] * 9) as server:
        workspace = Workspace.create(tmp_path_factory.mktemp("overloaded"), server.url)
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", "hi")
        return done, len(server.requests)


@pytest.mark.e2e
def test_cli_gives_up_after_retries_with_one_error_line_and_exit_1(
    overloaded_run: tuple[subprocess.CompletedProcess, int],
) -> None:
    done, _ = overloaded_run
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"ml-intern: error: cannot reach the model server for {MODEL}")
    assert "resume" in line and "--continue" in line


@pytest.mark.e2e
def test_cli_retries_are_bounded_and_shown_as_stream_json_events(
    overloaded_run: tuple[subprocess.CompletedProcess, int],
) -> None:
    done, requests = overloaded_run
    events = json_events(done.stdout)
    retries = [e for e in events if e["type"] == "tool_log" and e["tool"] == "model"]
    assert len(retries) == QUICK_RETRIES["attempts"] and requests == QUICK_RETRIES["attempts"] + 1
    assert "error" in [e["type"] for e in events]


# ---- bounded waits: a model server that goes quiet ---------------------------------------------------------

QUIET = 0.5  # stream_idle_timeout of these tests, in seconds


@pytest.mark.parametrize("partial", ["", "The ans"], ids=["after-headers", "mid-reply"])
async def test_a_stream_that_goes_quiet_is_retried_after_the_idle_timeout(
    llm_server: ScriptedLLMServer, sandbox: Sandbox, partial: str
) -> None:
    llm_server.push(script.stall_after_headers(30, partial), script.text("The answer is 42."))
    config = agent_config(stream_idle_timeout=QUIET)
    turn = await run_real_turn(llm_server.url, sandbox, "hi", config=config, stream=True)
    assert turn.error is None and turn.outcome.final_response == "The answer is 42."
    assert [m.content for m in turn.messages] == ["hi", "The answer is 42."]  # nothing of the quiet reply
    [log] = turn.logs()
    assert "StreamIdleTimeout" in log and f"sent nothing for {QUIET:g} s" in log and "retry 1/2" in log
    assert llm_server.request_times[1] - llm_server.request_times[0] < QUIET + 3


@pytest.mark.llm_script_leftovers
async def test_a_server_that_stays_quiet_fails_after_the_retries_with_one_line(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(*[script.stall_after_headers(30)] * 4)
    started = time.monotonic()
    config = agent_config(stream_idle_timeout=QUIET)
    turn = await run_real_turn(llm_server.url, sandbox, "hi", config=config, stream=True)
    assert time.monotonic() - started < 3 * QUIET + 5  # three tries, not three request_timeouts
    assert len(llm_server.requests) == QUICK_RETRIES["attempts"] + 1
    line, code = explain_model_error(turn.error, MODEL)
    assert code == 1 and "\n" not in line
    assert line.startswith(f"the model server at {llm_server.url} sent nothing for {QUIET:g} s")
    assert "stream_idle_timeout" in line


async def test_a_slow_stream_that_keeps_sending_is_not_cut(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.delay(1.0, script.text("slow but steady")))
    config = agent_config(stream_idle_timeout=3.0)  # room for the client's own start, which the clock counts
    turn = await run_real_turn(llm_server.url, sandbox, "hi", config=config, stream=True)
    assert turn.outcome.final_response == "slow but steady" and turn.logs() == []


# ---- bad inputs from the model server ----------------------------------------------------------------------

PORTAL = "<!DOCTYPE html><html><body><h1>Sign in to the guest Wi-Fi</h1></body></html>"
NULL_MESSAGE = json.dumps({
    "id": "x", "object": "chat.completion", "created": 1, "model": "scripted",
    "choices": [{"index": 0, "message": None, "finish_reason": "stop"}],
})  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.llm_script_leftovers
async def test_an_html_page_instead_of_the_api_is_named_and_not_retried(
    llm_server: ScriptedLLMServer, sandbox: Sandbox, stream: bool
) -> None:
    llm_server.push(*[script.raw_body(PORTAL)] * 4)
    turn = await run_real_turn(llm_server.url, sandbox, "hi", stream=stream)
    line, code = explain_model_error(turn.error, MODEL)
    assert (
        line
        == f"the model server at {llm_server.url} answered with HTML, not an API response; check the base URL"
    )
    assert code == 2 and turn.logs() == []
    assert len(llm_server.requests) == (2 if stream else 1)  # a stream of nothing is asked for once whole
    assert [m.content for m in turn.messages] == ["hi"]


@pytest.mark.llm_script_leftovers
async def test_a_reply_without_a_message_is_retried_then_named(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(*[script.raw_body(NULL_MESSAGE, "application/json")] * 4)
    turn = await run_real_turn(llm_server.url, sandbox, "hi")
    assert len(turn.logs()) == QUICK_RETRIES["attempts"]
    assert all("without a message (message: null)" in log and "Traceback" not in log for log in turn.logs())
    line, code = explain_model_error(turn.error, MODEL)
    assert code == 1 and "Traceback" not in line
    assert line.startswith(f"the model server at {llm_server.url} sent a reply without a message")


async def test_a_reply_without_a_message_then_a_good_one_goes_on(
    llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.raw_body(NULL_MESSAGE, "application/json"), script.text("fine now"))
    turn = await run_real_turn(llm_server.url, sandbox, "hi")
    assert turn.outcome.final_response == "fine now" and len(turn.logs()) == 1


# ---- bad inputs at the command line ------------------------------------------------------------------------


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr + done.stdout and "internal error" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("ml-intern: error: ")
    return line.removeprefix("ml-intern: error: ")


@pytest.mark.e2e
def test_a_damaged_database_is_named_with_what_to_do(tmp_path: Path) -> None:
    workspace = Workspace.create(tmp_path, "http://127.0.0.1:9/v1")
    workspace.database.write_bytes(b"\x13\x37 not a database " * 300)
    done = workspace.run("-m", MODEL, "hi")
    line = one_error_line(done)
    assert done.returncode == 1
    assert line.startswith(f"{workspace.database} is not a readable database (file is not a database)")
    assert "move it aside" in line


@pytest.mark.e2e
def test_a_dotenv_that_is_not_utf8_is_named_with_the_byte(tmp_path: Path) -> None:
    workspace = Workspace.create(tmp_path, "http://127.0.0.1:9/v1")
    (workspace.workdir / ".env").write_bytes(b"A=1\nGREETING=caf\xe9\n")
    done = workspace.run("-m", MODEL, "hi")
    assert done.returncode == 2
    assert (
        one_error_line(done)
        == f"{workspace.workdir / '.env'} is not UTF-8 (byte 0xe9 on line 2): save it as UTF-8"
    )


@pytest.mark.e2e
def test_a_stdin_prompt_with_invalid_bytes_runs_with_a_warning(tmp_path: Path) -> None:
    with ScriptedLLMServer(script.text("done")) as server:
        workspace = Workspace.create(tmp_path, server.url)
        done = subprocess.run(
            [str(installed_cli()), "-m", MODEL, "-"], env=workspace.env, cwd=workspace.workdir,
            input=b"summarise caf\xe9 \xff notes", capture_output=True, timeout=120,
        )  # fmt: skip
        sent_prompt = server.requests[0]["messages"][-1]["content"]
    stderr = done.stderr.decode()
    assert (done.returncode, done.stdout.decode().strip()) == (0, "done"), stderr
    assert "ml-intern: warning: stdin is not UTF-8 (byte 0xe9 at offset 13): 2 invalid" in stderr
    assert sent_prompt == "summarise caf\ufffd \ufffd notes"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        pytest.param(["-m", MODEL, "  "], "", "the prompt is empty", id="empty-prompt"),
        pytest.param(["-m", MODEL, "-"], "", "stdin was empty", id="empty-stdin"),
        pytest.param(["-m", MODEL], "", "the chat needs a terminal", id="no-tty"),
    ],
)
def test_usage_errors_leave_no_ml_intern_home_behind(
    tmp_path: Path, args: list[str], stdin: str, words: str
) -> None:
    workspace = Workspace.create(tmp_path, "http://127.0.0.1:9/v1")
    workspace.ml_intern_home.rmdir()
    done = workspace.run(*args, stdin=stdin)
    assert done.returncode == 2 and one_error_line(done).startswith(words)
    assert not workspace.ml_intern_home.exists()


@pytest.mark.e2e
def test_cli_names_an_html_answer_in_one_line_exit_2(tmp_path: Path) -> None:
    with ScriptedLLMServer(*[script.raw_body(PORTAL)] * 2) as server:
        workspace = Workspace.create(tmp_path, server.url)
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", "hi")
    assert done.returncode == 2
    assert one_error_line(done).startswith(f"the model server at {server.url} answered with HTML")


@pytest.mark.e2e
def test_cli_gives_up_on_a_quiet_server_in_seconds_with_one_line(tmp_path: Path) -> None:
    config = {"retries": QUICK_RETRIES, "stream_idle_timeout": QUIET}
    with ScriptedLLMServer(*[script.stall_after_headers(60)] * 3) as server:
        workspace = Workspace.create(tmp_path, server.url, config=config)
        started = time.monotonic()
        done = workspace.run("-m", MODEL, "--output-format", "stream-json", "hi")
        seconds = time.monotonic() - started
    line = one_error_line(done)
    assert done.returncode == 1 and seconds < 60
    assert f"sent nothing for {QUIET:g} s (stream_idle_timeout), on every try" in line
    assert "resume" in line  # the prompt was saved: the turn can be finished later


async def test_ctrl_c_before_anything_was_saved_names_no_thread(sandbox: Sandbox) -> None:
    async def cancelled(*args: object, **kwargs: object) -> None:
        raise asyncio.CancelledError

    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        session.start = cancelled  # type: ignore[method-assign]
        with pytest.raises(UserError) as stopped:
            await run_headless(session, RunOptions(prompt="hi"))
    assert stopped.value.exit_code == 130
    assert str(stopped.value) == "interrupted before the thread was saved: nothing to resume"
