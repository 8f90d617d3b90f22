"""Checks on each model reply in the running graph: malformed and truncated tool calls, stalls, retries of
transient provider faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_intern.graph.messages import is_guard
from ml_intern.nodes.doom_check import MALFORMED_AGAIN, STALL_GUARD, TRUNCATED
from tests.fakes import llm_server as script
from tests.harness_graph import (
    assert_every_call_answered,
    calls,
    make_tool,
    open_agent,
    saved_snapshot,
    thread_row,
    tool_messages,
)

FAST_RETRIES = {"retries": {"attempts": 2, "base_delay": 0.01, "max_delay": 0.02}}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def provider_error(name: str, message: str = "provider said no") -> Exception:
    """An exception shaped like litellm's (the retry policy looks at the class name)."""
    return type(name, (Exception,), {})(message)


async def test_unparseable_arguments_are_answered_and_the_loop_continues(db: Path) -> None:
    answers = [script.raw_tool_call("echo", "value=a, not JSON", id="bad_1"), "recovered"]
    async with open_agent(db, answers) as agent:
        outcome = await agent.send("go")
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "recovered")
    [told] = tool_messages(agent.model.calls[1])
    assert told.tool_call_id == "bad_1" and told.status == "error"
    assert "echo" in told.content and "not valid JSON" in told.content
    messages = (await saved_snapshot(db)).values["messages"]
    assert_every_call_answered(messages)
    assert messages[1].invalid_tool_calls == [] and [c["id"] for c in messages[1].tool_calls] == ["bad_1"]


async def test_repeated_malformed_call_asks_for_a_change_of_strategy(db: Path) -> None:
    answers = [
        script.raw_tool_call("echo", "{{{", id="bad_1"),
        script.raw_tool_call("echo", "still not JSON", id="bad_2"),
        "giving up on echo",
    ]
    async with open_agent(db, answers) as agent:
        await agent.send("go")
    first, second = tool_messages((await saved_snapshot(db)).values["messages"])
    assert MALFORMED_AGAIN.strip() not in first.content
    assert second.content.endswith(MALFORMED_AGAIN)


async def test_tool_call_truncated_by_the_output_limit_is_not_run(db: Path) -> None:
    saved: list[str] = []

    async def save(path: str, content: str) -> str:
        """Save a file."""
        saved.append(content)
        return f"saved {path}"

    # langchain completes the partial JSON, so the call looks valid: only finish_reason tells
    partial = '{"path": "train.py", "content": "import torch\\nmodel = torch.nn.Lin'
    cut = script.raw_tool_call("save", partial, id="cut_1", finish_reason="length")
    async with open_agent(db, [cut, "I will write it in parts."], tools=[make_tool(save)]) as agent:
        outcome = await agent.send("write the training script")
    assert (outcome.stop_reason, saved) == ("end_turn", [])
    [told] = tool_messages(agent.model.calls[1])
    assert (told.tool_call_id, told.content) == ("cut_1", TRUNCATED)


async def test_empty_reply_gets_one_nudge(db: Path) -> None:
    async with open_agent(db, ["", "Here is the answer."]) as agent:
        outcome = await agent.send("answer me")
    assert (outcome.stop_reason, outcome.final_response, outcome.iterations) == (
        "end_turn",
        "Here is the answer.",
        2,
    )
    nudge = agent.model.calls[1][-1]
    assert nudge.content == STALL_GUARD and is_guard(nudge)
    assert thread_row(db)["turns"] == 1


async def test_second_empty_reply_stops_the_turn_as_stalled(db: Path) -> None:
    async with open_agent(db, ["", "", "never sent"]) as agent:
        outcome = await agent.send("answer me")
    assert (outcome.stop_reason, len(agent.model.calls)) == ("stalled", 2)
    assert (await saved_snapshot(db)).values["stop_reason"] == "stalled"


async def test_transient_provider_faults_are_retried(db: Path) -> None:
    answers = [provider_error("RateLimitError"), provider_error("APIConnectionError"), "finally"]
    async with open_agent(db, answers, config=FAST_RETRIES) as agent:
        outcome = await agent.send("hi")
    assert (outcome.stop_reason, outcome.final_response, outcome.iterations) == ("end_turn", "finally", 1)
    assert len(agent.model.calls) == 3
    retries = [e["text"] for e in agent.events if e["type"] == "tool_log" and e["tool"] == "model"]
    assert len(retries) == 2 and "retry 1/2" in retries[0] and "RateLimitError" in retries[0]


async def test_permanent_provider_fault_is_not_retried(db: Path) -> None:
    answers = [provider_error("AuthenticationError", "invalid api key"), "never sent"]
    async with open_agent(db, answers, config=FAST_RETRIES) as agent:
        with pytest.raises(Exception, match="invalid api key") as raised:
            await agent.send("hi")
    assert type(raised.value).__name__ == "AuthenticationError"
    assert len(agent.model.calls) == 1


async def test_retries_give_up_after_the_configured_attempts(db: Path) -> None:
    answers = [provider_error("InternalServerError", f"boom {i}") for i in range(3)] + ["never sent"]
    async with open_agent(db, answers, config=FAST_RETRIES) as agent:
        with pytest.raises(Exception, match="boom 2"):
            await agent.send("hi")
    assert len(agent.model.calls) == 3
    saved = await saved_snapshot(db)
    assert [m.content for m in saved.values["messages"]] == ["hi"]  # the turn can be continued


async def test_calls_in_a_truncated_reply_are_all_answered(db: Path) -> None:
    cut = calls(("echo", {"value": "a"}), ("echo", {"value": "b"}))
    cut.response_metadata["finish_reason"] = "length"
    async with open_agent(db, [cut, "ok"]) as agent:
        await agent.send("go")
    results = tool_messages((await saved_snapshot(db)).values["messages"])
    assert [m.content for m in results] == [TRUNCATED, TRUNCATED]
