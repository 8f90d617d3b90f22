"""The headless CLI end to end: a real `ml-intern` process, litellm talking HTTP to a scripted local server,
threads kept in SQLite under ML_INTERN_HOME. Each process imports litellm (~5 s), so runs are grouped."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import CLOSED_LOOPBACK_URL, Sandbox, installed_cli
from tests.harness_cli import MODEL, saved_messages, seed_thread, thread_rows

pytestmark = pytest.mark.e2e  # every test runs `ml-intern` processes

STREAM_TYPES = {
    "thread_started", "processing", "assistant_chunk", "assistant_message", "assistant_stream_end",
    "tool_call", "tool_output", "tool_log", "tool_state_change", "approval_required", "turn_complete",
    "error", "interrupted", "compacted", "undo_complete", "shutdown",
    "ready", "resume_complete", "new_complete", "plan_update", "llm_call",  # the original's event contract
}  # fmt: skip
PRIMES_SCRIPT = "primes = [n for n in range(2, 30) if all(n % d for d in range(2, n))]\nprint(primes[:10])\n"


@pytest.fixture
def cli_env(
    subprocess_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> dict[str, str]:
    """The subprocess environment: vllm/ models served by the scripted server, quick model-call retries."""
    config = sandbox.root / "config.json"
    config.write_text(json.dumps({"retries": {"attempts": 1, "base_delay": 0.05, "max_delay": 0.1}}))
    return {**subprocess_env, "VLLM_BASE_URL": llm_server.url, "ML_INTERN_CONFIG": str(config)}


def run_cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `ml-intern ARGS` in the sandbox's working directory."""
    return subprocess.run(
        [str(installed_cli()), *args],
        env=env,
        cwd=Path.cwd(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def roles_and_text(request: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, content or tool calls) of each message the server received."""
    out = []
    for message in request["messages"]:
        calls = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ]
        out.append((message["role"], calls or message.get("content") or ""))
    return out


# ---- full runs --------------------------------------------------------------------------------------------


def test_prime_number_task_writes_runs_and_answers(
    cli_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    answer = "The first 10 primes are 2, 3, 5, 7, 11, 13, 17, 19, 23, 29."
    llm_server.push(
        script.tool_call("write", {"path": "primes.py", "content": PRIMES_SCRIPT}, id="w1"),
        script.tool_call("bash", {"command": "python primes.py"}, id="b1"),
        script.text(answer),
    )
    done = run_cli(cli_env, "--model", MODEL, "Write primes.py printing the first 10 primes and run it")
    assert done.returncode == 0, done.stderr
    assert done.stdout == answer + "\n"
    assert (sandbox.workdir / "primes.py").read_text() == PRIMES_SCRIPT
    [row] = thread_rows(sandbox)
    assert f"resume {row['thread_id']}" in done.stderr and "Traceback" not in done.stderr
    assert (row["title"], row["turns"], row["stop_reason"], row["model"]) == (
        "Write primes.py printing the first 10 primes and run it", 1, "end_turn", MODEL,
    )  # fmt: skip
    assert row["workdir"] == str(sandbox.workdir)
    bash_result = llm_server.requests[2]["messages"][-1]
    assert bash_result["role"] == "tool" and bash_result["tool_call_id"] == "b1"
    assert bash_result["content"].startswith("[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]")
    assert llm_server.requests[0]["model"] == "scripted" and llm_server.requests[0]["tools"]


async def test_resume_sends_the_whole_previous_conversation(
    cli_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    await seed_thread(
        "5eed00000001",
        "print the first 10 primes",
        [script.tool_call("bash", {"command": "echo 2 3 5 7"}, id="s1"), "They are 2, 3, 5, 7, ..."],
    )
    llm_server.push(script.text("Here are 20 primes."))
    done = run_cli(cli_env, "resume", "5eed", "now make it 20")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Here are 20 primes.\n"
    [request] = llm_server.requests
    assert roles_and_text(request)[1:] == [
        ("user", "print the first 10 primes"),
        ("assistant", [("bash", {"command": "echo 2 3 5 7"})]),
        ("tool", roles_and_text(request)[3][1]),
        ("assistant", "They are 2, 3, 5, 7, ..."),
        ("user", "now make it 20"),
    ]
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][3]["tool_call_id"] == "s1" and "2 3 5 7" in request["messages"][3]["content"]
    [row] = thread_rows(sandbox)
    assert (row["turns"], row["stop_reason"], row["title"]) == (2, "end_turn", "print the first 10 primes")
    assert [m.content for m in await saved_messages(sandbox, "5eed00000001")][-2:] == [
        "now make it 20",
        "Here are 20 primes.",
    ]


def test_json_output_is_one_object_and_the_iteration_cap_exits_3(
    cli_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 50}
    llm_server.push(
        script.tool_call("bash", {"command": "echo one"}, id="j1", usage=usage),
        script.tool_call("bash", {"command": "echo two"}, id="j2", usage=usage),
    )
    task = "count to two, slowly"
    done = run_cli(
        cli_env, "-m", MODEL, "--output-format", "json", "--max-iterations", "2", "-", stdin=task + "\n"
    )
    assert done.returncode == 3, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    summary = json.loads(done.stdout)
    assert set(summary) == {"thread_id", "final_response", "stop_reason", "iterations", "usage", "cost_usd"}
    assert (summary["stop_reason"], summary["iterations"]) == ("max_iterations", 2)
    assert (summary["usage"]["input_tokens"], summary["usage"]["output_tokens"]) == (2000, 100)
    assert llm_server.requests[0]["messages"][-1] == {"role": "user", "content": task}
    [row] = thread_rows(sandbox)
    assert (row["thread_id"], row["stop_reason"], row["input_tokens"]) == (
        summary["thread_id"],
        "max_iterations",
        2000,
    )


def test_stream_json_prints_one_typed_event_per_line(
    cli_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    llm_server.push(script.tool_call("bash", {"command": "echo streamed"}, id="e1"), script.text("All done."))
    done = run_cli(cli_env, "-m", MODEL, "--output-format", "stream-json", "say streamed")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    types = [event["type"] for event in events]
    assert set(types) <= STREAM_TYPES
    assert types[:2] == ["thread_started", "ready"] and types[-1] == "shutdown"
    [row] = thread_rows(sandbox)
    assert events[0]["thread_id"] == row["thread_id"] and events[1]["workdir"] == str(sandbox.workdir)
    assert events[1]["model"] == MODEL and events[1]["tool_count"] > 10
    for expected in (
        "processing",
        "tool_call",
        "tool_output",
        "assistant_chunk",
        "assistant_message",
        "llm_call",
    ):
        assert expected in types
    calls = [e for e in events if e["type"] == "llm_call"]
    assert len(calls) == types.count("assistant_message") and all(c["kind"] == "main" for c in calls)
    [output] = [e for e in events if e["type"] == "tool_output"]
    assert output["id"] == "e1" and output["success"] and "streamed" in output["output"]
    assert "".join(e["content"] for e in events if e["type"] == "assistant_chunk") == "All done."
    [complete] = [e for e in events if e["type"] == "turn_complete"]
    assert (complete["final_response"], complete["stop_reason"]) == ("All done.", "end_turn")
    assert types.index("turn_complete") > types.index("tool_output")


async def test_resume_continue_finishes_a_turn_stopped_by_the_cap(
    cli_env: dict[str, str], llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    seeded = await seed_thread(
        "ca9000000001",
        "build it",
        [script.tool_call("bash", {"command": "echo built"}, id="k1")],
        max_iterations=1,
    )
    assert seeded.stop_reason == "max_iterations"
    llm_server.push(script.text("Built and verified."))
    done = run_cli(cli_env, "resume", "ca9000000001", "--continue", "--output-format", "json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["stop_reason"], summary["final_response"], summary["iterations"]) == (
        "end_turn", "Built and verified.", 1,
    )  # fmt: skip
    sent = roles_and_text(llm_server.requests[0])
    assert [role for role, _ in sent] == ["system", "user", "assistant", "tool"]  # no new user message
    assert "built" in llm_server.requests[0]["messages"][-1]["content"]
    [row] = thread_rows(sandbox)
    assert (row["turns"], row["stop_reason"]) == (1, "end_turn")


async def test_threads_lists_each_thread_with_its_title(cli_env: dict[str, str], sandbox: Sandbox) -> None:
    await seed_thread("aaaa00000001", "first task: tokenize the corpus", ["tokenized"])
    await seed_thread("bbbb00000002", "second task: train the model", ["trained"])
    done = run_cli(cli_env, "threads")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "aaaa00000001" in line)
    second = next(i for i, line in enumerate(lines) if "bbbb00000002" in line)
    assert second < first  # most recent first
    assert "first task: tokenize the corpus" in lines[first] and MODEL in lines[first]
    assert "second task: train the model" in lines[second]


async def test_show_prints_the_transcript(cli_env: dict[str, str], sandbox: Sandbox) -> None:
    answers = [script.tool_call("bash", {"command": "echo shown"}, id="v1"), "It printed shown."]
    await seed_thread("5h0w00000001", "show me something", answers)
    done = run_cli(cli_env, "show", "5h0w")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("thread 5h0w00000001 · vllm/scripted")
    body = done.stdout
    for expected in (
        "user: show me something",
        '→ bash command="echo shown"',
        "[bash]",
        "assistant: It printed shown.",
    ):
        assert expected in body
    assert body.index("user: show me something") < body.index("[bash]") < body.index("assistant: It printed")


# ---- failures --------------------------------------------------------------------------------------------


def _unwritable_home(sandbox: Sandbox) -> dict[str, str]:
    blocker = sandbox.root / "a-regular-file"
    blocker.write_text("not a directory")
    return {"ML_INTERN_HOME": str(blocker / "home")}


ERRORS = [  # id, arguments, extra environment, stdin, exit code, words of the error
    ("unknown-provider", ["--model", "nosuchprovider/x", "hi"], {}, "", 2, "unknown model provider"),
    (
        "no-model",
        ["hi"],
        {"VLLM_BASE_URL": CLOSED_LOOPBACK_URL},
        "",
        2,
        "no model configured",
    ),  # none answers
    (
        "unreachable",
        ["-m", MODEL, "hi"],
        {"VLLM_BASE_URL": CLOSED_LOOPBACK_URL},
        "",
        1,
        "cannot reach the model",
    ),
    ("bad-flag", ["--no-such-flag", "hi"], {}, "", 2, "No such option"),
    ("unknown-thread", ["resume", "feedfacecafe", "hi"], {}, "", 2, "no thread matching 'feedfacecafe'"),
    ("empty-stdin", ["-m", MODEL, "-"], {}, "  \n", 2, "stdin was empty"),
    ("unwritable-home", ["-m", MODEL, "hi"], "unwritable", "", 2, "ML_INTERN_HOME"),
    ("unauthorized", ["-m", MODEL, "hi"], {}, "", 2, "rejected the credentials"),
]


@pytest.mark.parametrize(
    ("args", "extra_env", "stdin", "code", "words"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_print_one_line_and_exit_with_the_right_code(
    cli_env: dict[str, str],
    llm_server: ScriptedLLMServer,
    sandbox: Sandbox,
    args: list[str],
    extra_env: Any,
    stdin: str,
    code: int,
    words: str,
) -> None:
    if words == "rejected the credentials":
        llm_server.push(script.error(401, "Incorrect API key provided"))
    env = {**cli_env, **(_unwritable_home(sandbox) if extra_env == "unwritable" else extra_env)}
    done = run_cli(env, *args, stdin=stdin)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("ml-intern: error:")]
    assert len(error_lines) == 1 and words in error_lines[0]


def test_model_failure_prints_one_error_line_and_nothing_on_stdout(
    cli_env: dict[str, str], llm_server: ScriptedLLMServer
) -> None:
    llm_server.push(script.error(401, "Incorrect API key provided"))
    done = run_cli(cli_env, "-m", MODEL, "hi")
    assert done.returncode == 2
    assert done.stdout == ""
    assert [line for line in done.stderr.splitlines() if "rejected the credentials" in line] == [
        next(line for line in done.stderr.splitlines() if line.startswith("ml-intern: error:"))
    ]


def test_litellm_never_fetches_its_price_list(
    subprocess_env: dict[str, str], tmp_path: Path, ml_intern_cli: Path
) -> None:
    """Even without LITELLM_LOCAL_MODEL_COST_MAP in the environment, no network is touched for prices."""
    env = {k: v for k, v in subprocess_env.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    done = subprocess.run(
        [str(ml_intern_cli), "--model", "anthropic/claude-sonnet-4-5", "hi"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "ANTHROPIC_API_KEY" in done.stderr
    assert "cost map" not in done.stderr and "network guard" not in done.stderr


def test_a_dotenv_in_the_workdir_may_choose_ml_intern_home(sandbox, ml_intern_cli) -> None:
    chosen = sandbox.root / "from-dotenv"
    (sandbox.workdir / ".env").write_text(f"ML_INTERN_HOME={chosen}\n")
    env = {k: v for k, v in os.environ.items() if k != "ML_INTERN_HOME"}
    done = subprocess.run(
        [str(ml_intern_cli), "threads"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (chosen / "checkpoints.sqlite").is_file() and (chosen / "logs").is_dir()
    assert not (sandbox.home / ".local" / "share" / "ml-intern").exists()


def test_continue_with_a_prompt_is_a_usage_error(sandbox, ml_intern_cli) -> None:
    done = subprocess.run(
        [str(ml_intern_cli), "resume", "abc", "more", "--continue"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "takes no PROMPT" in done.stderr
    assert not (sandbox.ml_intern_home / "checkpoints.sqlite").exists()  # nothing opened for a usage error
