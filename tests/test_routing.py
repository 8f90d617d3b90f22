"""The steps the graph skips: approval_interrupt when no pending call needs a decision, compact mid-turn when
the context is under its threshold. Skipping never skips a decision: a state update `as_node` routes the full
path, and decisions left by a batch that never finished are replaced before a later batch runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from ml_intern.graph.builder import build_graph
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.registry import build_tools
from tests.harness import Sandbox
from tests.harness_graph import THREAD, calls, make_tool, open_agent, saved_snapshot, tool_messages

GATED = {"bash": {"approval_patterns": [r"\btouch\b"]}}  # `touch` needs approval


class Crash(BaseException):
    """The process dying while a tool runs (execute_tools catches Exception, not this)."""


async def steps(db: Path) -> list[str]:
    """The nodes the thread's checkpoints say ran, oldest first."""
    async with open_agent(db, []) as agent:
        history = [
            s async for s in agent.session.app.aget_state_history({"configurable": {"thread_id": THREAD}})
        ]
    return [node for snapshot in reversed(history) for node in snapshot.next if node != "__start__"]


async def test_a_call_needing_no_approval_goes_straight_to_execute_tools(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.sqlite"
    async with open_agent(db, [calls(("echo", {"value": "a"})), "done"]) as agent:
        outcome = await agent.send("go")
    assert outcome.final_response == "done"
    ran = await steps(db)
    assert ran == ["compact", "call_model", "doom_check", "execute_tools", "call_model", "doom_check"], ran


async def test_a_call_needing_approval_is_asked_and_a_large_result_compacts_mid_turn(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    async def page() -> str:
        """Fetch a long page."""
        return "word " * 4_000  # ~5,000 tokens: over the threshold below

    bash = build_tools(ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home, config=GATED), ["bash"])
    config = {**GATED, "compaction": {"threshold_tokens": 3_000, "keep_recent_tokens": 200}}
    db = tmp_path / "checkpoints.sqlite"
    script = [calls(("bash", {"command": "touch a.txt"})), calls(("page", {})), "summary", "done"]
    async with open_agent(db, script, tools=[*bash, make_tool(page)], config=config, approval="ask") as agent:
        asked = await agent.send("go")
        assert asked.approval is not None  # the gated call waits for the human
        outcome = await agent.resume({"approve": True})
    assert outcome.final_response == "done" and (sandbox.workdir / "a.txt").exists()
    ran = await steps(db)
    assert ran[:5] == ["compact", "call_model", "doom_check", "approval_interrupt", "execute_tools"], ran
    assert ran[5:9] == ["call_model", "doom_check", "execute_tools", "compact"], ran  # over the threshold


@pytest.mark.parametrize(
    ("as_node", "expected"), [("doom_check", "approval_interrupt"), ("execute_tools", "compact")]
)
async def test_a_state_update_as_a_node_routes_the_full_path(as_node: str, expected: str) -> None:
    app = build_graph(InMemorySaver())
    reply = calls(("echo", {"value": "x"}))  # a call that needs no approval
    messages: list[Any] = [HumanMessage("go"), reply]
    if as_node == "execute_tools":
        messages.append(ToolMessage("echo:x", tool_call_id=reply.tool_calls[0]["id"]))
    config = {"configurable": {"thread_id": "async"}}
    await app.aupdate_state(config, {"messages": messages}, as_node=as_node)
    assert (await app.aget_state(config)).next == (expected,)
    config = {"configurable": {"thread_id": "sync"}}  # an SDK user's synchronous update routes the same
    app.update_state(config, {"messages": messages}, as_node=as_node)
    assert app.get_state(config).next == (expected,)


def test_the_drawn_graph_has_every_route() -> None:
    edges = {(edge.source, edge.target) for edge in build_graph().get_graph().edges}
    skippable = {("doom_check", "execute_tools"), ("execute_tools", "call_model")}
    full = {
        ("doom_check", "approval_interrupt"),
        ("approval_interrupt", "execute_tools"),
        ("execute_tools", "compact"),
    }
    assert skippable | full <= edges


async def test_decisions_left_by_a_crashed_batch_never_answer_a_later_call_with_the_same_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ran: list[str] = []

    async def note(text: str) -> str:
        """Write a note."""
        if text == "crash":
            raise Crash()
        ran.append(text)
        return f"noted {text}"

    bash = build_tools(ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home, config=GATED), ["bash"])
    tools = [*bash, make_tool(note)]
    db = tmp_path / "checkpoints.sqlite"
    batch = [
        {"name": "bash", "args": {"command": "touch a.txt"}, "id": "c1", "type": "tool_call"},
        {"name": "note", "args": {"text": "crash"}, "id": "c2", "type": "tool_call"},
    ]
    first = AIMessage(content="thinking " * 220, tool_calls=batch)
    async with open_agent(db, [first], tools=tools, config=GATED,
                          approval="deny") as agent:  # fmt: skip
        with pytest.raises(Crash):
            await agent.send("first")
    assert (await saved_snapshot(db)).values["approvals"]["c1"]["approved"] is False  # c1 was denied
    # Compaction summarises the first turn away, so the model may use the id c1 again (ids still in the
    # transcript are made unique; a provider numbering calls per reply, or a hostile reply, reuses them).
    compacting = {**GATED, "compaction": {"threshold_tokens": 700, "keep_recent_tokens": 200}}
    again = {"name": "note", "args": {"text": "free"}, "id": "c1", "type": "tool_call"}
    script = ["summary of the first turn", AIMessage(content="", tool_calls=[again]), "done"]
    async with open_agent(db, script, tools=tools, config=compacting, approval="deny") as agent:
        await agent.send("second " + "s" * 2_000)
    assert ran == ["free"]  # a call that needs no approval runs, whatever an old batch's c1 was told
    assert tool_messages((await saved_snapshot(db)).values["messages"])[-1].content == "noted free"
