"""LangGraph Server on the shared Postgres: `langgraph dev` with ML_INTERN_DATABASE_URL set keeps the graph's
checkpoints in that database (langgraph.json's `checkpointer.path`); a run stops at an approval, is resumed
over the HTTP API, and every step of it is a row of the `checkpoints` table."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import Sandbox
from tests.harness_studio import dev_server_running

pytestmark = pytest.mark.e2e  # `langgraph dev` is a real process

COMMAND = "echo approved > ~/.server-approval-check && echo ran"  # a dotfile in ~: needs approval


@pytest.fixture
def server_url(
    sandbox: Sandbox, llm_server: ScriptedLLMServer, subprocess_env: dict[str, str], postgres_url: str
) -> Iterator[str]:
    """`langgraph dev` on the app's langgraph.json, ML_INTERN_DATABASE_URL the test's database."""
    config = sandbox.root / "config.json"
    config.write_text(json.dumps({"bash": {"confine": "off"}}))  # the approved command writes to HOME
    env = {
        **subprocess_env, "VLLM_BASE_URL": llm_server.url, "ML_INTERN_CONFIG": str(config),
        "ML_INTERN_DATABASE_URL": postgres_url,
    }  # fmt: skip
    with dev_server_running(sandbox.root, env) as server:
        yield server.url
    assert "BlockingError" not in server.log_text(), server.log_text()  # the whole log: the server stopped


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
