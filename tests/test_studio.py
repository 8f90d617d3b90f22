"""LangGraph Studio: `langgraph dev` serves the graph named in langgraph.json, offline; a client drives a run
through the approval interrupt and its resume with the SDK, as Studio does, and reads the history."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import FAKE_MCP_SERVER, Sandbox, is_running, started_pids
from tests.harness_studio import DevServer, dev_server_running

pytestmark = pytest.mark.e2e  # `langgraph dev` and an MCP server are real processes

DANGEROUS_COMMAND = "echo approved > ~/.studio-approval-check && echo ran"  # "a dotfile in ~": approval


@pytest.fixture
def dev_server(
    sandbox: Sandbox, llm_server: ScriptedLLMServer, subprocess_env: dict[str, str]
) -> Iterator[DevServer]:
    """`langgraph dev` on a free loopback port, its model the scripted server; its log printed on failure."""
    config = sandbox.root / "config.json"  # the user's config, as the CLI reads it: one MCP server
    mcp_server = {
        "command": sys.executable,
        "args": [str(FAKE_MCP_SERVER), "--starts", str(sandbox.root / "starts")],
        "tool_approval": {"shout": "never"},  # the config lets it run unasked (MCP tools ask by default)
    }
    # Unconfined bash: the approved command writes its check file to HOME (approval is under test here).
    config.write_text(json.dumps({"mcpServers": {"fake": mcp_server}, "bash": {"confine": "off"}}))
    env = {**subprocess_env, "VLLM_BASE_URL": llm_server.url, "ML_INTERN_CONFIG": str(config)}
    with dev_server_running(sandbox.root, env) as server:
        yield server


async def stream_run(client: Any, thread_id: str, context: dict[str, Any], **run: Any) -> list[Any]:
    """Stream one run to its end; every part (event, data)."""
    parts = []
    async for part in client.runs.stream(
        thread_id, "ml-intern", context=context, stream_mode=["values", "custom"], **run
    ):
        parts.append(part)
    return parts


def custom_event_types(parts: list[Any]) -> list[str]:
    return [part.data.get("type") for part in parts if part.event == "custom"]


async def test_studio_runs_the_graph_through_an_approval_and_its_resume(
    dev_server: DevServer, llm_server: ScriptedLLMServer, sandbox: Sandbox
) -> None:
    from langgraph_sdk import get_client

    llm_server.push(
        script.tool_call("bash", {"command": DANGEROUS_COMMAND}, id="call_danger"),
        script.tool_call("shout", {"text": "mcp"}, id="call_mcp"),
        script.text("Wrote the file."),
    )
    client = get_client(url=dev_server.url)
    context = {"model": "vllm/scripted", "approval": "ask", "workdir": str(sandbox.workdir), "stream": True}
    try:
        assistants = await client.assistants.search(graph_id="ml-intern")
        assert [a["graph_id"] for a in assistants] == ["ml-intern"]
        thread = await client.threads.create()
        thread_id = thread["thread_id"]
        prompt = {"messages": [{"role": "user", "content": "write the check file"}]}
        first = await stream_run(client, thread_id, context, input=prompt)
        waiting = await client.threads.get_state(thread_id)
        [task] = [task for task in waiting["tasks"] if task["interrupts"]]
        [pending] = task["interrupts"]
        assert waiting["next"] == ["approval_interrupt"]
        assert not (sandbox.home / ".studio-approval-check").exists()  # nothing runs before the answer
        second = await stream_run(client, thread_id, context, command={"resume": {"approve": True}})
        final = await client.threads.get_state(thread_id)
        history = await client.threads.get_history(thread_id, limit=50)
    except Exception:
        print(dev_server.log_text())
        raise

    assert pending["value"] == {
        "type": "approval",
        "tool_calls": [
            {
                "id": "call_danger",
                "name": "bash",
                "args": {"command": DANGEROUS_COMMAND},
                "reason": pending["value"]["tool_calls"][0]["reason"],
                "always_ask": False,
            }
        ],
    }
    assert pending["value"]["tool_calls"][0]["reason"]
    assert "processing" in custom_event_types(first)
    assert "tool_output" not in custom_event_types(first)

    # After the resume the approved command really ran: its file, its output, its result in the thread.
    assert (sandbox.home / ".studio-approval-check").read_text() == "approved\n"
    outputs = [
        part.data for part in second if part.event == "custom" and part.data.get("type") == "tool_output"
    ]
    assert [(o["id"], o["output"], o["success"]) for o in outputs] == [
        ("call_danger", "ran", True),
        ("call_mcp", "MCP", True),
    ]
    messages = final["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai", "tool", "ai"]
    assert messages[2]["tool_call_id"] == "call_danger" and messages[2]["status"] == "success"
    assert messages[2]["content"] == "ran"
    assert messages[4]["tool_call_id"] == "call_mcp" and messages[4]["content"] == "MCP"
    assert messages[-1]["content"] == "Wrote the file."
    assert final["next"] == []
    assert len(history) >= 4
    assert {tuple(step["next"]) for step in history} >= {("approval_interrupt",), ()}

    sent = json.dumps(llm_server.requests[1]["messages"])
    assert "call_danger" in sent and len(llm_server.requests) == 3
    offered = {tool["function"]["name"] for tool in llm_server.requests[0]["tools"]}
    assert {"bash", "shout", "fake__read"} <= offered  # MCP tools from the first model call on
    assert "shout" in llm_server.requests[0]["messages"][0]["content"]  # ... and in the system prompt
    assert len(started_pids(sandbox.root / "starts")) == 1  # one server for both runs

    assert "BlockingError" not in dev_server.log_text()
    [mcp_pid] = started_pids(sandbox.root / "starts")
    dev_server.stop()
    deadline = time.monotonic() + 15
    while is_running(mcp_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_running(mcp_pid)  # the MCP server saw its stdin close and exited
