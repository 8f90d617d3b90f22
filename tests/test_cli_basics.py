"""What users of Claude Code, Codex and `llm` expect of a CLI: --version, --debug, shell completion, -c
(continue this directory's latest thread), piped stdin as context, --max-budget-usd; and the original's
config file and `--max-iterations -1`. Real `ml-intern` processes against the scripted model server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import Sandbox, installed_cli
from tests.harness_cli import MODEL, Workspace, error_lines, json_events

pytestmark = pytest.mark.e2e  # every test runs `ml-intern` processes


@pytest.fixture
def workspace(sandbox: Sandbox, llm_server: ScriptedLLMServer) -> Workspace:
    return Workspace.create(sandbox.root / "ws", llm_server.url)


def run_in(
    workspace: Workspace, cwd: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`ml-intern ARGS` in `cwd` (which may differ from the workspace's workdir)."""
    return subprocess.run(
        [str(installed_cli()), *args], env=env or workspace.env, cwd=cwd, input=stdin,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def last_user_message(request: dict) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


# ---- version, completion, debug ----------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_package_version(workspace: Workspace, flag: str) -> None:
    done = workspace.run(flag)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"ml-intern {version('ml-intern')}\n", "")
    assert not workspace.database.exists()


def test_show_completion_prints_a_script_for_the_shell(workspace: Workspace) -> None:
    done = workspace.run("--show-completion", "bash")
    assert done.returncode == 0 and "_ML_INTERN_COMPLETE=complete_bash" in done.stdout


def test_install_completion_adds_the_script_to_the_shell_startup(workspace: Workspace) -> None:
    done = workspace.run("--install-completion", "bash")
    assert done.returncode == 0 and "bash completion installed in" in done.stdout
    script = (workspace.home / ".bash_completions" / "ml-intern.sh").read_text()
    assert "_ML_INTERN_COMPLETE=complete_bash" in script
    assert "ml-intern.sh" in (workspace.home / ".bashrc").read_text()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("ml-intern res", ["resume"]),
        ("ml-intern --max-b", ["--max-budget-usd"]),
        ("ml-intern --ver", ["--version", "--verbose"]),
        ("ml-intern resume --no-", ["--no-stream"]),
    ],
)
def test_the_shell_completes_commands_and_options(workspace: Workspace, words: str, expected: list) -> None:
    env = {**workspace.env, "_ML_INTERN_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - 1)
    done = run_in(workspace, workspace.workdir, env=env)
    assert done.returncode == 0 and done.stdout.split() == expected


def test_debug_shows_library_logs_on_stderr(workspace: Workspace, llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.text("done"))
    done = workspace.run("-m", MODEL, "--debug", "say done")
    assert done.returncode == 0 and done.stdout == "done\n"
    assert "INFO LiteLLM: " in done.stderr  # library logs, which stay in the log file without it


# ---- budgets and iterations --------------------------------------------------------------------------------


def test_max_budget_usd_is_the_max_cost_option(workspace: Workspace, llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.text("cheap"))
    assert workspace.run("-m", MODEL, "--max-budget-usd", "0.5", "go").returncode == 0
    refused = workspace.run("-m", MODEL, "--max-budget-usd", "-1", "go")
    assert refused.returncode == 2 and "'--max-budget-usd'" in refused.stderr
    assert "greater than or equal to 0" in refused.stderr


def test_max_iterations_minus_one_is_unlimited_and_zero_is_refused(
    workspace: Workspace, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(
        *(script.tool_call("bash", {"command": f"echo {n}"}) for n in range(3)), script.text("ok")
    )
    done = workspace.run("-m", MODEL, "--max-iterations", "-1", "--output-format", "json", "count")
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["iterations"], json.loads(done.stdout)["stop_reason"]) == (4, "end_turn")
    refused = workspace.run("-m", MODEL, "--max-iterations", "0", "count")
    assert refused.returncode == 2 and len(error_lines(refused.stderr)) == 1
    assert "-1 for unlimited" in refused.stderr


# ---- -c: continue this directory's latest thread -----------------------------------------------------------


def test_continue_picks_the_latest_thread_of_this_directory(
    workspace: Workspace, llm_server: ScriptedLLMServer
) -> None:
    here, elsewhere = workspace.workdir, workspace.root / "elsewhere"
    elsewhere.mkdir()
    llm_server.push(script.text("one"), script.text("two"), script.text("three"))
    assert run_in(workspace, here, "-m", MODEL, "first here").returncode == 0
    assert run_in(workspace, elsewhere, "-m", MODEL, "first elsewhere").returncode == 0
    done = run_in(workspace, here, "-c", "again here")
    assert done.returncode == 0 and done.stdout == "three\n", done.stderr
    sent = [m["content"] for m in llm_server.requests[2]["messages"] if m["role"] in ("user", "assistant")]
    assert sent == ["first here", "one", "again here"]
    rows = {row["title"]: row for row in workspace.thread_rows()}
    assert (rows["first here"]["turns"], rows["first elsewhere"]["turns"]) == (2, 1)


def test_continue_without_a_thread_here_is_one_line(workspace: Workspace) -> None:
    done = workspace.run("-c", "hello")
    here = workspace.workdir.resolve()
    assert done.returncode == 2 and error_lines(done.stderr) == [
        f"ml-intern: error: no thread was started in {here} yet: "
        'run ml-intern "PROMPT" (or ml-intern threads)'
    ]
    both = workspace.run("-c", "--thread", "abc", "hello")
    assert both.returncode == 2 and "drop one" in both.stderr


@pytest.mark.parametrize(("args", "line"), [(["-c", " "], "the prompt is empty"), (["-c"], "terminal")])
def test_continue_checks_its_usage_before_opening_the_threads(workspace: Workspace, args, line) -> None:
    done = workspace.run(*args)  # stdin is no terminal: no chat
    assert done.returncode == 2 and len(error_lines(done.stderr)) == 1 and line in done.stderr, done.stderr
    assert not workspace.database.exists()


# ---- piped stdin as context --------------------------------------------------------------------------------


def test_piped_text_is_added_to_the_prompt_in_a_fenced_block(
    workspace: Workspace, llm_server: ScriptedLLMServer
) -> None:
    log = "Traceback (most recent call last):\n  ValueError: bad ```fence```\n"
    llm_server.push(script.text("a bad value"))
    done = workspace.run("-m", MODEL, "why did this fail?", stdin=log)
    assert done.returncode == 0, done.stderr
    expected = f"why did this fail?\n\n````\n{log.rstrip()}\n````"
    assert last_user_message(llm_server.requests[0]) == expected
    assert workspace.thread_rows()[0]["title"].startswith("why did this fail?")


def test_piped_text_is_cut_with_a_note(workspace: Workspace, llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.text("long"))
    done = workspace.run("-m", MODEL, "--output-format", "stream-json", "summarise", stdin="é" * 150_000)
    assert done.returncode == 0, done.stderr
    assert json_events(done.stdout)[0]["type"] == "thread_started"
    sent = last_user_message(llm_server.requests[0])
    assert sent.endswith("```\n(stdin was cut to its first 200 KB)") and "\ufffd" not in sent
    assert sent.count("é") == 100_000 and "not UTF-8" not in done.stderr


def test_an_open_socket_stdin_that_sends_nothing_does_not_hang_the_run(
    workspace: Workspace, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(script.text("fine"))
    started = time.monotonic()
    ours, theirs = socket.socketpair()  # a parent's socket left open as stdin (no pipe, no file)
    with ours, theirs:
        done = subprocess.run(
            [str(installed_cli()), "-m", MODEL, "just answer"], env=workspace.env, cwd=workspace.workdir,
            stdin=theirs, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "fine\n", done.stderr
    assert last_user_message(llm_server.requests[0]) == "just answer"
    assert "stdin sent nothing in 1 s: not read" in done.stderr and time.monotonic() - started < 60


def test_a_slow_pipe_is_read_to_its_end_with_a_note(
    workspace: Workspace, llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(script.text("it built"))
    writer = subprocess.Popen(  # `make 2>&1 | ml-intern`: the first byte after 4 s (well after start-up)
        ["sh", "-c", "sleep 4; echo first line; sleep 2; echo second line"], stdout=subprocess.PIPE
    )
    with writer:
        done = subprocess.run(
            [str(installed_cli()), "-m", MODEL, "why?"], env=workspace.env, cwd=workspace.workdir,
            stdin=writer.stdout, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert last_user_message(llm_server.requests[0]) == "why?\n\n```\nfirst line\nsecond line\n```"
    assert done.stderr.count("ml-intern: reading stdin… (Ctrl-D / end the pipe)") == 1


def test_dash_still_reads_the_prompt_from_stdin(workspace: Workspace, llm_server: ScriptedLLMServer) -> None:
    llm_server.push(script.text("read it"))
    assert workspace.run("-m", MODEL, "-", stdin="the task\n").returncode == 0
    assert last_user_message(llm_server.requests[0]) == "the task"


# ---- the original ml-intern's config -----------------------------------------------------------------------


def test_the_original_config_is_read_with_a_notice(
    workspace: Workspace, llm_server: ScriptedLLMServer
) -> None:
    original = workspace.home / ".config" / "ml-intern" / "cli_agent_config.json"
    original.parent.mkdir(parents=True)
    original.write_text(json.dumps({"model_name": MODEL, "max_iterations": 1}))
    env = {key: value for key, value in workspace.env.items() if key != "ML_INTERN_CONFIG"}
    llm_server.push(script.tool_call("bash", {"command": "echo hi"}))
    done = run_in(workspace, workspace.workdir, "do it", env=env)
    assert done.returncode == 3, done.stderr  # the original file's max_iterations: 1
    assert f"reading the original ml-intern's config {original}; ml-intern now reads" in done.stderr
    assert os.fspath(workspace.home / ".config" / "ml-intern" / "config.json") in done.stderr
