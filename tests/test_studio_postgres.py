"""LangGraph Server on the shared Postgres: `langgraph dev` with ML_INTERN_DATABASE_URL set keeps the graph's
checkpoints in that database (langgraph.json's `checkpointer.path`); a run stops at an approval, is resumed
over the HTTP API, and every step of it is a row of the `checkpoints` table."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import NETGUARD_DIR, REPO_ROOT, Sandbox

pytestmark = pytest.mark.e2e  # `langgraph dev` is a real process

LANGGRAPH = Path(sys.executable).parent / "langgraph"  # installed by the dev extras (langgraph-cli[inmem])
OFFLINE = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}
COMMAND = "echo approved > ~/.server-approval-check && echo ran"  # a dotfile in ~: needs approval


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server_url(
    sandbox: Sandbox, llm_server: ScriptedLLMServer, subprocess_env: dict[str, str], postgres_url: str
) -> Iterator[str]:
    """`langgraph dev` on the app's langgraph.json, ML_INTERN_DATABASE_URL the test's database."""
    if not LANGGRAPH.exists():
        pytest.skip("langgraph-cli[inmem] is not installed")
    app = sandbox.root / "app"
    app.mkdir()
    shutil.copy(REPO_ROOT / "langgraph.json", app)
    shutil.copytree(REPO_ROOT / "ml_intern", app / "ml_intern", ignore=shutil.ignore_patterns("__pycache__"))
    config = sandbox.root / "config.json"
    config.write_text(json.dumps({"bash": {"confine": "off"}}))  # the approved command writes to HOME
    port, log = free_port(), sandbox.root / "langgraph-dev.log"
    env = {
        **subprocess_env, **OFFLINE, "PYTHONPATH": str(NETGUARD_DIR), "VLLM_BASE_URL": llm_server.url,
        "ML_INTERN_CONFIG": str(config), "ML_INTERN_DATABASE_URL": postgres_url,
    }  # fmt: skip
    command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_ok(f"http://127.0.0.1:{port}", process, log)
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        print(log.read_text(errors="replace"))
        raise
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert "network guard" not in text and "BlockingError" not in text, text


def wait_until_ok(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"langgraph dev did not answer /ok within 90 s:\n{log.read_text(errors='replace')}")


def rows(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def checkpoints(url: str, thread_id: str) -> int:
    """Rows of the thread in the shared database's `checkpoints` table."""
    return rows(url, "SELECT count(*) FROM checkpoints WHERE thread_id = %s", thread_id)[0][0]


async def test_a_server_run_stops_at_an_approval_and_resumes_with_its_checkpoints_in_postgres(
    server_url: str, llm_server: ScriptedLLMServer, sandbox: Sandbox, postgres_url: str
) -> None:
    from langgraph_sdk import get_client

    llm_server.push(script.tool_call("bash", {"command": COMMAND}, id="call_danger"), script.text("Done."))
    client = get_client(url=server_url)
    context = {"model": "vllm/scripted", "approval": "ask", "workdir": str(sandbox.workdir)}
    thread_id = (await client.threads.create())["thread_id"]
    prompt = {"messages": [{"role": "user", "content": "write the check file"}]}
    await client.runs.wait(thread_id, "ml-intern", input=prompt, context=context)
    waiting = await client.threads.get_state(thread_id)
    assert waiting["next"] == ["approval_interrupt"]
    [pending] = [i for task in waiting["tasks"] for i in task["interrupts"]]
    assert [call["id"] for call in pending["value"]["tool_calls"]] == ["call_danger"]
    waiting_rows = checkpoints(postgres_url, thread_id)
    assert not (sandbox.home / ".server-approval-check").exists()

    await client.runs.wait(thread_id, "ml-intern", command={"resume": {"approve": True}}, context=context)
    final = await client.threads.get_state(thread_id)
    assert [m["type"] for m in final["values"]["messages"]] == ["human", "ai", "tool", "ai"]
    assert final["values"]["messages"][-1]["content"] == "Done." and final["next"] == []
    assert (sandbox.home / ".server-approval-check").read_text() == "approved\n"

    # Every step is in the shared database: more checkpoints after the resume than while it waited.
    count = checkpoints(postgres_url, thread_id)
    assert waiting_rows >= 3 and count > waiting_rows
    assert rows(postgres_url, "SELECT version FROM ml_intern_migrations ORDER BY version")  # set up by us
    history = await client.threads.get_history(thread_id, limit=50)
    assert len(history) == count
