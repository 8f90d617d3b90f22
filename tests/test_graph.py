"""The agent loop end to end with a scripted model and a real SQLite checkpointer: replies, tool calls,
errors, the iteration cap, usage, checkpoint storage. The harness is `tests/harness_graph.py`."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, SystemMessage

from ml_intern.tools.base import ToolError
from tests.fakes import llm_server as script
from tests.harness_graph import (
    SYSTEM_PROMPT,
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


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


# ---- a turn -------------------------------------------------------------------------------------------


async def test_text_reply_ends_turn_with_end_turn(db: Path) -> None:
    async with open_agent(db, ["Hello there."]) as agent:
        outcome = await agent.send("hi")
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "Hello there.")
    assert outcome.iterations == 1
    sent = agent.model.calls[0]
    assert isinstance(sent[0], SystemMessage) and sent[0].content == SYSTEM_PROMPT
    assert [(m.type, m.content) for m in sent[1:]] == [("human", "hi")]
    saved = await saved_snapshot(db)
    transcript = [(m.type, m.content) for m in saved.values["messages"]]
    assert transcript == [("human", "hi"), ("ai", "Hello there.")]
    assert saved.values["stop_reason"] == "end_turn" and saved.next == ()
    row = thread_row(db)
    assert (row["title"], row["turns"], row["stop_reason"]) == ("hi", 1, "end_turn")
    assert row["model"] == "test/scripted"


async def test_streamed_reply_emits_chunks_then_stream_end(db: Path) -> None:
    async with open_agent(db, ["A streamed answer."]) as agent:
        await agent.send("hi")
    chunks = [e["content"] for e in agent.events if e["type"] == "assistant_chunk"]
    assert "".join(chunks) == "A streamed answer." and len(chunks) > 1
    assert agent.event_types()[-1] == "assistant_stream_end"


async def test_tool_loop_feeds_results_back_and_ends_on_text(db: Path) -> None:
    first, second = calls(("echo", {"value": "a"})), calls(("echo", {"value": "b"}))
    async with open_agent(db, [first, second, "done"]) as agent:
        outcome = await agent.send("go")
    assert (outcome.stop_reason, outcome.iterations, outcome.final_response) == ("end_turn", 3, "done")
    last_prompt = agent.model.calls[-1]
    assert kinds(last_prompt) == ["system", "human", "ai", "tool", "ai", "tool"]
    assert [m.content for m in tool_messages(last_prompt)] == ["echo:a", "echo:b"]
    saved = await saved_messages(db)
    assert kinds(saved) == ["human", "ai", "tool", "ai", "tool", "ai"]
    call_ids = [first.tool_calls[0]["id"], second.tool_calls[0]["id"]]
    assert [m.tool_call_id for m in tool_messages(saved)] == call_ids


async def test_tool_results_are_written_in_call_order(db: Path) -> None:
    async def sleepy(value: str, seconds: float) -> str:
        """Sleep, then return the value."""
        await asyncio.sleep(seconds)
        return value

    reply = calls(
        ("sleepy", {"value": "first", "seconds": 0.3}),
        ("sleepy", {"value": "second", "seconds": 0.0}),
        ("sleepy", {"value": "third", "seconds": 0.15}),
    )
    async with open_agent(db, [reply, "done"], tools=[make_tool(sleepy)]) as agent:
        await agent.send("go")
    finished = [e["output"] for e in agent.events if e["type"] == "tool_output"]
    assert finished == ["second", "third", "first"]  # they really completed out of order
    results = tool_messages(await saved_messages(db))
    call_ids = [call["id"] for call in reply.tool_calls]
    assert [m.tool_call_id for m in results] == call_ids
    assert [m.content for m in results] == ["first", "second", "third"]


async def test_concurrent_tool_calls_run_in_parallel(db: Path) -> None:
    started = {"left": asyncio.Event(), "right": asyncio.Event()}

    async def meet(me: str, other: str) -> str:
        started[me].set()
        try:  # only returns "met" if the other call is running at the same time
            await asyncio.wait_for(started[other].wait(), timeout=3)
        except TimeoutError:
            return "ran alone"
        return "met"

    async def left() -> str:
        """Left side."""
        return await meet("left", "right")

    async def right() -> str:
        """Right side."""
        return await meet("right", "left")

    tools = [make_tool(left), make_tool(right)]
    async with open_agent(db, [calls(("left", {}), ("right", {})), "done"], tools=tools) as agent:
        await agent.send("go")
    # run one after the other, the first call would wait 3 s for the second and answer "ran alone"
    assert [m.content for m in tool_messages(await saved_messages(db))] == ["met", "met"]


# ---- failures become tool messages ------------------------------------------------------------------------


async def test_unknown_tool_becomes_error_message_and_loop_continues(db: Path) -> None:
    async with open_agent(db, [calls(("no_such_tool", {"x": 1})), "recovered"]) as agent:
        outcome = await agent.send("go")
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "recovered")
    [result] = tool_messages(agent.model.calls[1])
    assert result.status == "error"
    assert "unknown tool 'no_such_tool'" in result.content and "echo" in result.content
    assert tool_messages(await saved_messages(db))[0].content == result.content


async def test_invalid_arguments_become_error_message_and_loop_continues(db: Path) -> None:
    async with open_agent(db, [calls(("echo", {"wrong": 1})), "recovered"]) as agent:
        outcome = await agent.send("go")
    assert outcome.stop_reason == "end_turn"
    [result] = tool_messages(await saved_messages(db))
    assert result.status == "error"
    assert result.content.startswith("Error: invalid arguments for echo") and "value" in result.content


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (RuntimeError("disk on fire"), "Error: fragile failed: RuntimeError: disk on fire"),
        (ToolError("the file is locked; retry later"), "Error: the file is locked; retry later"),
    ],
)
async def test_exception_in_tool_becomes_error_message(db: Path, raised: Exception, expected: str) -> None:
    async def fragile() -> str:
        """Always fails."""
        raise raised

    async with open_agent(db, [calls(("fragile", {})), "recovered"], tools=[make_tool(fragile)]) as agent:
        outcome = await agent.send("go")
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "recovered")
    [result] = tool_messages(await saved_messages(db))
    assert (result.content, result.status) == (expected, "error")
    assert tool_messages(agent.model.calls[1])[0].content == expected


async def test_huge_tool_output_is_clipped(db: Path) -> None:
    async def flood() -> str:
        """Too much output."""
        return "x" * 200_000

    async with open_agent(db, [calls(("flood", {})), "ok"], tools=[make_tool(flood)]) as agent:
        await agent.send("go")
    [result] = tool_messages(await saved_messages(db))
    assert len(result.content) < 30_000 and "characters omitted" in result.content


async def test_turn_cut_off_during_a_tool_resumes_its_pending_calls(db: Path) -> None:
    started, runs = asyncio.Event(), []

    async def train(epochs: int) -> str:
        """Train."""
        runs.append(epochs)
        started.set()
        await asyncio.sleep(0 if len(runs) > 1 else 60)
        return f"trained {epochs} epochs"

    reply = calls(("train", {"epochs": 3}))
    async with open_agent(db, [reply], tools=[make_tool(train)]) as agent:
        turn = asyncio.create_task(agent.send("train it"))
        await started.wait()
        turn.cancel()  # the process is killed while the tool runs
        with pytest.raises(asyncio.CancelledError):
            await turn
    cut = await saved_snapshot(db)
    assert cut.next == ("execute_tools",) and kinds(cut.values["messages"]) == ["human", "ai"]
    async with open_agent(db, ["Training finished."], tools=[make_tool(train)]) as agent:
        outcome = await agent.run(None)  # what `resume --continue` sends when steps are pending
    assert (outcome.stop_reason, runs) == ("end_turn", [3, 3])
    [result] = tool_messages(await saved_messages(db))
    assert (result.tool_call_id, result.content) == (reply.tool_calls[0]["id"], "trained 3 epochs")


# ---- iteration cap and usage ------------------------------------------------------------------------------


async def test_max_iterations_stops_the_turn(db: Path) -> None:
    answers = [calls(("echo", {"value": "1"})), calls(("echo", {"value": "2"})), "never sent"]
    async with open_agent(db, answers, max_iterations=2) as agent:
        outcome = await agent.send("go")
    assert (outcome.stop_reason, outcome.iterations) == ("max_iterations", 2)
    assert len(agent.model.calls) == 2
    saved = await saved_snapshot(db)
    assert saved.values["stop_reason"] == "max_iterations" and saved.next == ()
    assert_every_call_answered(saved.values["messages"])
    assert thread_row(db)["stop_reason"] == "max_iterations"


async def test_continue_after_max_iterations_goes_on_with_the_same_turn(db: Path) -> None:
    answers = [calls(("echo", {"value": "1"})), calls(("echo", {"value": "2"})), "finished"]
    async with open_agent(db, answers, max_iterations=1) as agent:
        assert (await agent.send("go")).stop_reason == "max_iterations"
        outcome = await agent.continue_()
        assert outcome.stop_reason == "max_iterations"
        outcome = await agent.continue_()
    assert (outcome.stop_reason, outcome.final_response) == ("end_turn", "finished")
    saved = await saved_messages(db)
    assert kinds(saved) == ["human", "ai", "tool", "ai", "tool", "ai"]
    assert thread_row(db)["turns"] == 1


async def test_usage_totals_accumulate_across_calls_and_turns(db: Path) -> None:
    def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        }

    answers = [
        script.tool_call("echo", {"value": "a"}, id="u1", usage=usage(100, 10, 40)),
        script.text("one", usage=usage(200, 20, 150)),
        script.text("two", usage=usage(300, 30)),
    ]
    async with open_agent(db, answers) as agent:
        first = await agent.send("first")
        second = await agent.send("second")
    assert first.usage == {
        "input_tokens": 300, "output_tokens": 30, "cached_tokens": 190, "calls": 2, "cost_usd": None,
    }  # fmt: skip
    assert second.thread_usage["input_tokens"] == 600 and second.thread_usage["calls"] == 3
    saved = await saved_snapshot(db)
    assert saved.values["usage"] == second.thread_usage
    assert saved.values["context_tokens"] == 330  # the latest call's prompt + completion
    row = thread_row(db)
    assert (row["input_tokens"], row["output_tokens"], row["turns"]) == (600, 60, 2)


async def test_cost_accumulates_when_the_price_is_known(db: Path) -> None:
    answers = [
        AIMessage(content="", tool_calls=[{"name": "echo", "args": {"value": "a"}, "id": "c1"}],
                  response_metadata={"response_cost": 0.25}),
        AIMessage(content="done", response_metadata={"response_cost": 0.5}),
    ]  # fmt: skip
    async with open_agent(db, answers, stream=False) as agent:
        outcome = await agent.send("go")
    assert outcome.usage["cost_usd"] == pytest.approx(0.75)
    assert thread_row(db)["cost_usd"] == pytest.approx(0.75)


# ---- storage ----------------------------------------------------------------------------------------------


def _blob(index: int, size: int = 5_000) -> str:
    """`size` characters of distinct text (nothing for the storage to deduplicate)."""
    seed = hashlib.sha256(str(index).encode()).hexdigest()
    return (seed * (size // len(seed) + 1))[:size]


def _database_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if not p.name.endswith("-shm"))


async def _fetch_turn(db: Path, turn: int, iterations: int) -> None:
    """A turn of `iterations` model calls, each fetching a distinct 5 KB page (session closed after)."""

    async def fetch(index: int) -> str:
        """Fetch a 5 KB page."""
        return _blob(index)

    answers = [calls(("fetch", {"index": turn * 1000 + i})) for i in range(iterations - 1)] + ["fetched"]
    async with open_agent(db, answers, tools=[make_tool(fetch)], stream=False) as agent:
        outcome = await agent.send(f"fetch batch {turn}")
    assert (outcome.stop_reason, outcome.iterations) == ("end_turn", iterations)


async def test_checkpoint_storage_grows_linearly_with_the_transcript(db: Path) -> None:
    # Measured: 30 + 30 iterations with 5 KB results store ~0.30 MB, then ~0.53 MB in all, for a ~0.29 MB
    # transcript (1.8x; 3.4x when an iteration was five node steps, each saving a ~0.85 KB checkpoint). The
    # default full-list channel stores ~3x more in the second half than in the first, ~30x the transcript.
    await _fetch_turn(db, 0, 30)
    first_half = _database_bytes(db)
    await _fetch_turn(db, 1, 30)
    total = _database_bytes(db)
    messages = await saved_messages(db)
    assert len(messages) == 120
    transcript = sum(len(str(m.content)) + len(str(getattr(m, "tool_calls", ""))) for m in messages)
    assert total - first_half < 1.25 * first_half, f"sizes {first_half} then {total}: not linear"
    assert total < 2.5 * transcript, f"{total} bytes stored for a {transcript}-byte transcript"


async def test_a_call_needing_no_approval_costs_three_checkpoints_an_iteration(db: Path) -> None:
    # call_model, doom_check, execute_tools: approval_interrupt and compact are skipped when they have nothing
    # to do (five steps an iteration made ~48 checkpoints here).
    await _fetch_turn(db, 0, 10)
    with closing(sqlite3.connect(db)) as conn:
        steps = [row[0] for row in conn.execute("SELECT metadata FROM checkpoints ORDER BY checkpoint_id")]
    assert 28 <= len(steps) <= 3 * 10 + 4, f"{len(steps)} checkpoints for 10 model calls"


async def test_a_turn_sent_as_messages_only_starts_fresh(db: Path) -> None:
    """LangGraph Studio and the SDK send only {"messages": [...]}: the turn's counters still reset."""
    from langchain_core.messages import HumanMessage

    answers = [calls(("echo", {"value": "a"})), "first done", "second done"]
    async with open_agent(db, answers, max_iterations=2) as agent:
        first = await agent.send("first")
        second = await agent.run({"messages": [HumanMessage(content="second")]})
    assert (first.stop_reason, first.iterations) == ("end_turn", 2)
    assert (second.stop_reason, second.final_response, second.iterations) == ("end_turn", "second done", 1)
