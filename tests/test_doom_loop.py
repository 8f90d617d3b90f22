"""Doom-loop detection in the running graph: repeats are blocked, guarded, and finally end the turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage

from ml_intern.graph.messages import is_guard, is_user_turn
from ml_intern.nodes.doom_check import BLOCKED, DOOM_GUARD
from tests.harness_graph import (
    assert_every_call_answered,
    calls,
    make_tool,
    open_agent,
    saved_snapshot,
    thread_row,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def counting_tools(results: dict[str, Any]) -> tuple[list[Any], dict[str, int]]:
    """Tools `a` and `b` (and `probe`) that count their runs; `results[name]` makes each result."""
    runs = {"a": 0, "b": 0, "probe": 0}

    def run(name: str) -> str:
        runs[name] += 1
        return results.get(name, lambda n: f"{name} result")(runs[name])

    async def a(target: str = "x") -> str:
        """Tool a."""
        return run("a")

    async def b(target: str = "x") -> str:
        """Tool b."""
        return run("b")

    async def probe(target: str = "x") -> str:
        """Check something."""
        return run("probe")

    return [make_tool(a), make_tool(b), make_tool(probe)], runs


def guards_in(messages: list[Any]) -> list[HumanMessage]:
    return [m for m in messages if isinstance(m, HumanMessage) and is_guard(m)]


def blocked_in(messages: list[Any]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage) and m.content == BLOCKED]


def probe_call() -> Any:
    return calls(("probe", {"target": "server"}))


async def test_fourth_identical_call_is_blocked_and_a_guard_added(db: Path) -> None:
    tools, runs = counting_tools({})
    answers = [probe_call() for _ in range(4)] + ["I will try another approach."]
    async with open_agent(db, answers, tools=tools) as agent:
        outcome = await agent.send("check the server")
    assert (outcome.stop_reason, runs["probe"]) == ("end_turn", 3)
    messages = (await saved_snapshot(db)).values["messages"]
    assert [m.type for m in messages[-4:]] == ["ai", "tool", "human", "ai"]
    blocked, guard = messages[-3], messages[-2]
    assert blocked.content == BLOCKED and blocked.tool_call_id == messages[-4].tool_calls[0]["id"]
    assert guard.content == DOOM_GUARD and is_guard(guard) and not is_user_turn(guard)
    assert agent.model.calls[4][-1].content == DOOM_GUARD  # the model was told
    assert thread_row(db)["turns"] == 1  # a guard is not a user turn
    assert any(e["type"] == "tool_log" and e["tool"] == "doom_check" for e in agent.events)


async def test_turn_ends_with_doom_loop_after_two_guards(db: Path) -> None:
    tools, runs = counting_tools({})
    answers = [probe_call() for _ in range(6)] + ["never sent"]
    async with open_agent(db, answers, tools=tools) as agent:
        outcome = await agent.send("check the server")
    assert (outcome.stop_reason, outcome.iterations, runs["probe"]) == ("doom_loop", 6, 3)
    assert len(agent.model.calls) == 6
    saved = await saved_snapshot(db)
    messages = saved.values["messages"]
    assert len(guards_in(messages)) == 2 and len(blocked_in(messages)) == 3
    assert_every_call_answered(messages)
    assert (saved.values["stop_reason"], thread_row(db)["stop_reason"]) == ("doom_loop", "doom_loop")
    assert any(e["type"] == "error" for e in agent.events)


async def test_polling_with_changing_results_is_not_a_loop(db: Path) -> None:
    tools, runs = counting_tools({"probe": lambda n: f"training step {n * 100}"})
    answers = [probe_call() for _ in range(6)] + ["training finished"]
    async with open_agent(db, answers, tools=tools) as agent:
        outcome = await agent.send("watch the training")
    assert (outcome.stop_reason, runs["probe"]) == ("end_turn", 6)
    messages = (await saved_snapshot(db)).values["messages"]
    assert guards_in(messages) == [] and blocked_in(messages) == []


async def test_alternating_cycle_is_detected(db: Path) -> None:
    tools, runs = counting_tools({})
    a, b = ("a", {"target": "x"}), ("b", {"target": "x"})
    answers = [calls(a), calls(b), calls(a), calls(b), calls(a), "breaking the cycle"]
    async with open_agent(db, answers, tools=tools) as agent:
        outcome = await agent.send("go")
    assert outcome.stop_reason == "end_turn"
    assert (runs["a"], runs["b"]) == (2, 2)
    messages = (await saved_snapshot(db)).values["messages"]
    assert len(guards_in(messages)) == 1 and len(blocked_in(messages)) == 1


async def test_same_calls_in_separate_user_turns_are_not_a_loop(db: Path) -> None:
    tools, runs = counting_tools({})
    answers = [probe_call(), probe_call(), "up", probe_call(), probe_call(), "still up"]
    async with open_agent(db, answers, tools=tools) as agent:
        await agent.send("check the server")
        outcome = await agent.send("check it again")
    assert (outcome.stop_reason, runs["probe"]) == ("end_turn", 4)
    assert guards_in((await saved_snapshot(db)).values["messages"]) == []


async def test_guard_count_restarts_with_each_user_turn(db: Path) -> None:
    tools, runs = counting_tools({})
    first_turn = [probe_call() for _ in range(5)] + ["giving up on that"]
    second_turn = [probe_call() for _ in range(4)] + ["different approach"]
    async with open_agent(db, first_turn + second_turn, tools=tools) as agent:
        assert (await agent.send("check")).stop_reason == "end_turn"
        outcome = await agent.send("check once more")
    assert outcome.stop_reason == "end_turn"  # one guard in this turn, not the third of the thread
    assert runs["probe"] == 6
