"""A chat's cost controls and the loop's self-healing: the yolo cap on paid HF jobs, the usage check that
asks to go on at $5 (then $10, ...), context overflow recognised by the provider's wording, `llm_call`
events, and compaction's placeholder for an oversized kept message."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

import ml_intern.tools.jobs.tool as jobs
from ml_intern.graph.budget import next_check, thread_spend, yolo_spent
from ml_intern.nodes.approval_interrupt import reservations
from ml_intern.nodes.compact import OVERSIZED, SUMMARY_PROMPT, summarise
from ml_intern.tools.base import ToolEnv
from tests.fakes import llm_server as script
from tests.fakes.chat_model import ScriptedChatModel
from tests.fakes.jobs_server import FakeJobsHub, Plan
from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness import Sandbox
from tests.harness_graph import open_agent, saved_messages, saved_snapshot, tool_messages
from tests.harness_litellm import agent_config, run_real_turn, sent

_ids = itertools.count(1)
CAP_REASON = "Estimated cost $2.00 exceeds the remaining yolo cap $1.00"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def reply(*calls: tuple[str, dict], text: str = "", cost: float | None = None) -> AIMessage:
    """An assistant reply calling `calls`; `cost`: what the provider says it cost (the scripted model has no
    price in litellm's table, so that is its cost)."""
    tool_calls = [{"name": name, "args": args, "id": f"cost_{next(_ids)}"} for name, args in calls]
    metadata = {"response_cost": cost} if cost is not None else {}
    return AIMessage(content=text, tool_calls=tool_calls, response_metadata=metadata)


def two_dollar_job() -> tuple[str, dict]:
    """An a10g-large job ($1.50/h) for at most 80 minutes: $2.00."""
    args = {"command": ["sleep", "1"], "wait": False, "hardware_flavor": "a10g-large", "timeout": "80m"}
    return ("hf_jobs", {"operation": "run", **args})


def jobs_tools(hub: FakeJobsHub, tmp_path: Path) -> list[Any]:
    env = ToolEnv(workdir=tmp_path, home=tmp_path / "home", hf_endpoint=hub.url, hf_token=hub.token)
    return jobs.make_tools(env)


# ---- the yolo cap ---------------------------------------------------------------------------------------


async def test_yolo_approves_paid_jobs_only_within_its_cap(db: Path, tmp_path: Path) -> None:
    answers = [reply(two_dollar_job()), reply(two_dollar_job()), reply(two_dollar_job()), reply(text="done")]
    with FakeJobsHub() as hub:
        hub.plan = Plan(hold=True)
        async with open_agent(db, answers, tools=jobs_tools(hub, tmp_path), approval="yolo") as agent:
            outcome = await agent.send("train three models")
            assert len(hub.jobs) == 2  # the first two ran without asking
            assert outcome.approval is not None
            [asked] = outcome.approval["tool_calls"]
            assert asked["always_ask"] is True and asked["reason"].startswith(CAP_REASON)
            assert "GPU job on a10g-large for up to 80m" in asked["reason"]
            done = await agent.resume({"approve": True})  # a person approved it: not charged to the cap
        assert (done.stop_reason, done.final_response, len(hub.jobs)) == ("end_turn", "done", 3)
    saved = (await saved_snapshot(db)).values
    assert sorted(saved["yolo_reserved"].values()) == [2.0, 2.0]
    assert sorted(saved["thread_jobs"].values()) == [2.0, 2.0, 2.0]  # the usage check counts all three


async def test_a_batch_reserves_as_it_goes_and_the_chats_yolo_answers_count(db: Path, tmp_path: Path) -> None:
    batch = reply(two_dollar_job(), two_dollar_job(), two_dollar_job())
    with FakeJobsHub() as hub:
        hub.plan = Plan(hold=True)
        async with open_agent(db, [batch, reply(text="ok")], tools=jobs_tools(hub, tmp_path)) as agent:
            outcome = await agent.send("train")
            assert outcome.approval is not None
            payload = outcome.approval["tool_calls"]
            assert [call["always_ask"] for call in payload] == [False, False, True]
            assert payload[2]["reason"].startswith(CAP_REASON)
            yolo = {"approved": True, "yolo": True}  # what the chat sends once the user said "yolo"
            ids = [call["id"] for call in payload]
            decisions = {ids[0]: yolo, ids[1]: yolo, ids[2]: {"approved": False, "feedback": "too much"}}
            await agent.resume({"decisions": decisions})
        assert len(hub.jobs) == 2
    reserved = (await saved_snapshot(db)).values["yolo_reserved"]
    assert {key.split("/")[-1]: cost for key, cost in reserved.items()} == {ids[0]: 2.0, ids[1]: 2.0}
    assert all(not key.startswith("#") for key in reserved)  # under the id of the reply that made the calls


async def test_a_job_of_unknown_cost_is_always_asked_under_yolo(db: Path, tmp_path: Path) -> None:
    name, args = two_dollar_job()
    unknown = (name, {**args, "timeout": "until it converges"})
    with FakeJobsHub() as hub:
        async with open_agent(
            db, [reply(unknown)], tools=jobs_tools(hub, tmp_path), approval="yolo"
        ) as agent:
            outcome = await agent.send("train")
    assert outcome.approval is not None and hub.jobs == {}
    [asked] = outcome.approval["tool_calls"]
    assert asked["always_ask"] is True and asked["reason"].startswith("Estimated cost unknown")


def paid_reply(reply_id: str, *call_ids: str) -> AIMessage:
    return AIMessage(
        content="", id=reply_id, tool_calls=[{"name": "hf_jobs", "args": {}, "id": c} for c in call_ids]
    )


def yolo_reserve(state: dict[str, Any], costs: dict[str, float]) -> None:
    """What approval_interrupt records when yolo approves the latest reply's paid calls."""
    approved = {call_id: {"approved": True, "yolo": True} for call_id in costs}
    state.update(reservations(state, approved, costs))


def test_a_failed_call_releases_its_reservation_only_if_no_job_started() -> None:
    state: dict[str, Any] = {"messages": [HumanMessage("train"), paid_reply("r1", "a", "b", "c", "d")]}
    yolo_reserve(state, {"a": 2.0, "b": 1.5, "c": 0.25, "d": 1.0})
    started = {"job": {"id": "j1", "state": "started", "max_cost_usd": 1.0}}
    state["messages"] += [
        ToolMessage(content="Error: quota", tool_call_id="a", status="error"),
        ToolMessage(content="started", tool_call_id="b"),
        ToolMessage(content="Error: wait failed", tool_call_id="d", status="error", artifact=started),
    ]
    assert yolo_spent(state) == 2.75  # b, c (no result yet) and d (its job started) stay reserved


def test_a_call_id_reused_after_compaction_never_frees_the_cap() -> None:
    state: dict[str, Any] = {"messages": [HumanMessage("train"), paid_reply("r1", "g0")]}
    yolo_reserve(state, {"g0": 2.5})
    state["messages"] = [
        HumanMessage("train"),
        HumanMessage("[summary]"),
        paid_reply("r2", "g0"),
    ]  # compacted
    yolo_reserve(state, {"g0": 0.0})  # a cheap call reusing the id
    state["messages"].append(ToolMessage(content="Error: bad flavor", tool_call_id="g0", status="error"))
    assert yolo_spent(state) == 2.5 and len(state["yolo_reserved"]) == 2
    state["messages"] = [
        HumanMessage("[summary]"),
        AIMessage(content="", tool_calls=[{"name": "x", "args": {}, "id": "g0"}]),
    ]
    yolo_reserve(state, {"g0": 0.0})  # a reply without an id: a new numbered key, never an old one
    assert yolo_spent(state) == 2.5 and len(state["yolo_reserved"]) == 3


async def test_headless_auto_is_not_capped(db: Path, tmp_path: Path) -> None:
    answers = [reply(two_dollar_job(), two_dollar_job(), two_dollar_job()), reply(text="done")]
    with FakeJobsHub() as hub:
        hub.plan = Plan(hold=True)
        async with open_agent(db, answers, tools=jobs_tools(hub, tmp_path), approval="auto") as agent:
            outcome = await agent.send("train")
        assert (outcome.approval, outcome.final_response, len(hub.jobs)) == (None, "done", 3)


# ---- the usage check --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spent", "threshold", "after"), [(4.99, 5, 5), (5, 5, 10), (12.25, 5, 20), (40, 20, 80)]
)
def test_the_next_check_doubles_past_the_spend(spent: float, threshold: float, after: float) -> None:
    assert next_check(spent, threshold) == after


def test_the_threads_spend_counts_its_model_calls_and_the_jobs_it_started_at_their_most() -> None:
    state = {"usage": {"cost_usd": 1.25}, "thread_jobs": {"j1": 4.5, "j2": None}}
    assert thread_spend(state) == 5.75
    assert thread_spend({"usage": {"cost_usd": None}, "thread_jobs": {"j1": 2.0}}) == 2.0  # unknown price


async def test_a_chat_past_the_threshold_asks_and_goes_on_when_approved(db: Path) -> None:
    answers = [reply(("echo", {"value": "a"}), cost=6.0), reply(text="done", cost=0.5)]
    async with open_agent(db, answers, approval="yolo") as agent:
        outcome = await agent.send("go")
        assert outcome.approval is not None and tool_messages(await saved_messages(db)) == []
        [check] = outcome.approval["tool_calls"]
        assert check == {
            "id": "usage_threshold",
            "name": "usage_threshold",
            "args": {"spent_usd": 6.0, "next_check_usd": 10.0},
            "reason": "This thread has spent $6.00. Continue? (next check at $10.00)",
            "always_ask": True,
        }
        done = await agent.resume({"decisions": {"usage_threshold": {"approved": True}}})
    assert (done.stop_reason, done.final_response) == ("end_turn", "done")
    saved = (await saved_snapshot(db)).values
    assert saved["usage_check_usd"] == 10.0 and [m.content for m in tool_messages(saved["messages"])] == [
        "echo:a"
    ]


async def test_rejecting_the_usage_check_ends_the_turn_without_running_the_calls(db: Path) -> None:
    answers = [reply(("echo", {"value": "a"}), cost=6.0), reply(text="never sent")]
    async with open_agent(db, answers, approval="ask") as agent:
        await agent.send("go")
        stopped = await agent.resume({"approve": False})
        assert stopped.stop_reason == "budget" and len(agent.model.calls) == 1
    saved = (await saved_snapshot(db)).values
    [result] = tool_messages(saved["messages"])
    assert "stopped at the usage check" in result.content and result.status == "error"
    assert saved["usage_check_usd"] == 10.0


async def test_headless_runs_are_never_paused_by_the_usage_check(db: Path) -> None:
    answers = [reply(("echo", {"value": "a"}), cost=6.0), reply(text="done")]
    async with open_agent(db, answers, approval="auto") as agent:
        outcome = await agent.send("go")
    assert (outcome.approval, outcome.final_response) == (None, "done")


# ---- self-healing and telemetry ---------------------------------------------------------------------------


async def test_every_model_call_emits_an_llm_call_event(db: Path) -> None:
    answers = [reply(("echo", {"value": "a"}), cost=0.25), reply(text="done", cost=0.5)]
    async with open_agent(db, answers, approval="auto") as agent:
        await agent.send("go")
    calls = [e for e in agent.events if e["type"] == "llm_call"]
    assert [(e["kind"], e["model"], e["cost_usd"]) for e in calls] == [
        ("main", "test/scripted", 0.25),
        ("main", "test/scripted", 0.5),
    ]
    assert all(e["latency_ms"] >= 0 and "cache_write_tokens" in e for e in calls)


@pytest.mark.parametrize(
    "wording",
    [
        "prompt is too long: 210000 tokens > 200000 maximum",
        "Input is too long for requested model.",  # litellm leaves these two unclassified: our patterns
        "This request (40211 tokens) exceeds the context window of 32768 tokens",
    ],
)
async def test_a_context_overflow_in_the_providers_words_compacts_and_retries(
    llm_server: ScriptedLLMServer, sandbox: Sandbox, wording: str
) -> None:
    llm_server.push(
        script.tool_call("bash", {"command": "echo one"}, id="c1"),
        script.tool_call("bash", {"command": "echo two"}, id="c2"),
        script.error(400, wording),
        script.text("- ran echo one and echo two"),
        script.text("done"),
    )
    config = agent_config(compaction={"keep_recent_tokens": 10})
    turn = await run_real_turn(llm_server.url, sandbox, "run two echos", config=config)
    assert turn.outcome is not None
    assert (turn.outcome.stop_reason, turn.outcome.final_response) == ("end_turn", "done")
    assert llm_server.requests[3]["messages"][0]["content"] == SUMMARY_PROMPT
    assert sent(llm_server.requests[4])[1][1].startswith("[Summary of the earlier conversation]")
    calls = [e for e in turn.events if e["type"] == "llm_call"]
    assert [e["kind"] for e in calls] == ["main", "main", "compaction", "main"]  # the refused call made none
    assert [e["finish_reason"] for e in calls] == ["tool_calls", "tool_calls", "stop", "stop"]
    assert calls[-1]["model"] == "openai/scripted" and calls[-1]["input_tokens"] > 0


async def test_an_oversized_kept_message_becomes_a_placeholder() -> None:
    huge = "x" * (OVERSIZED * 4 + 400)
    messages = [
        SystemMessage(content="system"),
        HumanMessage(content="train a model"),
        AIMessage(content="", tool_calls=[{"name": "bash", "args": {}, "id": "a"}]),
        ToolMessage(content="small", tool_call_id="a"),
        AIMessage(content="", tool_calls=[{"name": "bash", "args": {}, "id": "b"}]),
        ToolMessage(content="y" * OVERSIZED * 4, tool_call_id="b"),  # summarised: the tail stops here
        AIMessage(content="", tool_calls=[{"name": "bash", "args": {}, "id": "c"}]),
        ToolMessage(content="log: " + huge, tool_call_id="c", name="bash"),
    ]
    result = await summarise(messages, ScriptedChatModel(["- ran bash"]), keep_recent=OVERSIZED * 2)
    assert result is not None
    kept = result[0][-1]
    assert isinstance(kept, ToolMessage) and kept.tool_call_id == "c"
    assert kept.content.startswith("[result of bash of about 50,101 tokens removed by compaction")
    assert "It began: log: xxx" in kept.content and len(kept.content) < 1_500
