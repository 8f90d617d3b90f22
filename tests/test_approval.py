"""The approval protocol (DESIGN.md): interrupt payload, resume values, auto/deny policies, side effects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from ml_intern.configs.schema import as_config
from ml_intern.graph.messages import NOT_EXECUTED
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.local.shell import needs_approval
from ml_intern.tools.registry import build_tools
from tests.conftest import Sandbox
from tests.test_graph import (
    THREAD,
    assert_every_call_answered,
    calls,
    kinds,
    make_tool,
    open_agent,
    saved_messages,
    saved_snapshot,
    thread_row,
    tool_messages,
)

# Calls need approval through the real registry: a `bash.approval_patterns` rule (config) for the real bash
# tool, and the jobs family's rule for a fake `hf_jobs`.
CONFIG = {"bash": {"approval_patterns": [r"\btouch\b"]}}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


@pytest.fixture
def outbox(sandbox: Sandbox) -> Path:
    """The working directory, where the bash tool runs."""
    return sandbox.workdir


def side_effect_tools(outbox: Path, ran: list[str]) -> list[Any]:
    """The real `bash` tool (`touch` needs approval) and `note`, which needs none and records that it ran."""

    async def note(text: str) -> str:
        """Write a note."""
        ran.append(text)
        return f"noted {text}"

    bash = build_tools(ToolEnv(workdir=outbox, home=outbox.parent / "home", config=CONFIG), ["bash"])
    return [*bash, make_tool(note)]


def touch(name: str) -> tuple[str, dict[str, str]]:
    return ("bash", {"command": f"touch {name}"})


def agent_on(db: Path, answers: list[Any], outbox: Path, approval: str, ran: list[str] | None = None) -> Any:
    tools = side_effect_tools(outbox, [] if ran is None else ran)
    return open_agent(db, answers, tools=tools, config=CONFIG, approval=approval)


async def test_ask_interrupts_with_the_design_payload_before_anything_runs(db: Path, outbox: Path) -> None:
    ran: list[str] = []
    reply = calls(("note", {"text": "hello"}), touch("a.txt"))
    async with agent_on(db, [reply], outbox, "ask", ran) as agent:
        outcome = await agent.send("make a file")
    call = reply.tool_calls[1]
    reason = needs_approval(call["args"], as_config(CONFIG))
    assert reason and "touch a.txt" in reason
    expected = {
        "type": "approval",
        "tool_calls": [
            {"id": call["id"], "name": "bash", "args": {"command": "touch a.txt"}, "reason": reason}
        ],
    }
    assert (outcome.stop_reason, outcome.approval) == ("approval_required", expected)
    assert not (outbox / "a.txt").exists() and ran == []  # nothing of that reply ran yet
    saved = await saved_snapshot(db)
    assert [i.value for i in saved.interrupts] == [expected]
    assert saved.next == ("approval_interrupt",)
    assert kinds(saved.values["messages"]) == ["human", "ai"]
    assert thread_row(db)["stop_reason"] is None  # the turn is still open


async def test_resume_decisions_approve_and_reject_per_call(db: Path, outbox: Path) -> None:
    reply = calls(touch("yes.txt"), touch("no.txt"))
    yes_id, no_id = (call["id"] for call in reply.tool_calls)
    async with agent_on(db, [reply], outbox, "ask") as agent:
        await agent.send("make files")
    decisions = {yes_id: {"approved": True}, no_id: {"approved": False, "feedback": "not that one"}}
    async with agent_on(db, ["done"], outbox, "ask") as agent:
        outcome = await agent.resume({"decisions": decisions})  # a new process answers the interrupt
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "done")
    assert (outbox / "yes.txt").exists() and not (outbox / "no.txt").exists()
    results = {m.tool_call_id: m for m in tool_messages(await saved_messages(db))}
    assert (results[yes_id].status, results[yes_id].content) == ("success", "(no output)")
    assert results[no_id].status == "error"
    assert "rejected" in results[no_id].content and "not that one" in results[no_id].content
    assert tool_messages(agent.model.calls[0])[1].content == results[no_id].content


async def test_shorthand_rejection_applies_to_every_call_with_feedback(db: Path, outbox: Path) -> None:
    reply = calls(touch("a.txt"), touch("b.txt"))
    async with agent_on(db, [reply, "ok, I will not"], outbox, "ask") as agent:
        await agent.send("make files")
        outcome = await agent.resume({"approve": False, "feedback": "use the scratch dir instead"})
    assert outcome.stop_reason == "end_turn"
    assert list(outbox.iterdir()) == []
    sent_back = tool_messages(agent.model.calls[1])
    assert len(sent_back) == 2
    assert all("rejected" in m.content and "use the scratch dir instead" in m.content for m in sent_back)
    assert [m.content for m in tool_messages(await saved_messages(db))] == [m.content for m in sent_back]


async def test_shorthand_approval_runs_every_call(db: Path, outbox: Path) -> None:
    reply = calls(touch("a.txt"), touch("b.txt"))
    async with agent_on(db, [reply, "made"], outbox, "ask") as agent:
        await agent.send("make files")
        outcome = await agent.resume({"approve": True})
    assert outcome.stop_reason == "end_turn"
    assert sorted(p.name for p in outbox.iterdir()) == ["a.txt", "b.txt"]


async def test_decision_missing_for_a_call_rejects_it(db: Path, outbox: Path) -> None:
    reply = calls(touch("a.txt"), touch("b.txt"))
    first_id = reply.tool_calls[0]["id"]
    async with agent_on(db, [reply, "ok"], outbox, "ask") as agent:
        await agent.send("make files")
        await agent.resume({"decisions": {first_id: {"approved": True}}})
    assert [p.name for p in outbox.iterdir()] == ["a.txt"]
    assert "rejected" in tool_messages(await saved_messages(db))[1].content


async def test_auto_approves_without_interrupting(db: Path, outbox: Path) -> None:
    async with agent_on(db, [calls(touch("a.txt")), "made"], outbox, "auto") as agent:
        outcome = await agent.send("make a file")
    assert (outcome.stop_reason, outcome.approval) == ("end_turn", None)
    assert (outbox / "a.txt").exists()
    assert not (await saved_snapshot(db)).interrupts


async def test_deny_rejects_without_interrupting(db: Path, outbox: Path) -> None:
    ran: list[str] = []
    reply = calls(touch("a.txt"), ("note", {"text": "free"}))
    async with agent_on(db, [reply, "understood"], outbox, "deny", ran) as agent:
        outcome = await agent.send("make a file")
    assert (outcome.stop_reason, outcome.approval) == ("end_turn", None)
    assert not (outbox / "a.txt").exists() and ran == ["free"]  # calls needing no approval still run
    touch_result, note_result = tool_messages(await saved_messages(db))
    assert touch_result.status == "error" and "--approval deny" in touch_result.content
    assert note_result.content == "noted free"


@pytest.mark.parametrize(("operation", "runs"), [("run", True), ("scheduled run", False)])
async def test_auto_never_approves_scheduled_jobs(db: Path, operation: str, runs: bool) -> None:
    submitted: list[str] = []

    async def hf_jobs(operation: str, script: str = "", schedule: str = "") -> str:
        """A stand-in for the jobs tool; the approval rule is the jobs family's own."""
        submitted.append(operation)
        return "submitted"

    args = {"operation": operation, "script": "print(1)", "schedule": "@daily"}
    answers = [calls(("hf_jobs", args)), "ok"]
    async with open_agent(db, answers, tools=[make_tool(hf_jobs)], approval="auto") as agent:
        outcome = await agent.send("train nightly")
    assert outcome.approval is None
    [result] = tool_messages(await saved_messages(db))
    assert (submitted == [operation]) is runs
    assert ("never approved automatically" in result.content) is not runs


async def test_new_message_instead_of_resume_answers_every_pending_call(db: Path, outbox: Path) -> None:
    reply = calls(touch("a.txt"), touch("b.txt"))
    async with agent_on(db, [reply, "fine, something else"], outbox, "ask") as agent:
        assert (await agent.send("make files")).stop_reason == "approval_required"
        outcome = await agent.send("never mind, do something else")
    assert outcome.stop_reason == "end_turn"
    assert list(outbox.iterdir()) == []
    sent = agent.model.calls[1]
    assert kinds(sent) == ["system", "human", "ai", "tool", "tool", "human"]
    assert_every_call_answered(sent[1:])
    assert [m.content for m in sent if isinstance(m, ToolMessage)] == [NOT_EXECUTED, NOT_EXECUTED]
    saved = await saved_snapshot(db, THREAD)
    assert not saved.interrupts and saved.values["stop_reason"] == "end_turn"
