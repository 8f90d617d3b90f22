"""Token and cost accounting: prices from litellm's table, per-call and per-turn totals (research and
compaction included and labelled), unknown prices kept unknown, and per-turn budgets that stop a turn before
the call that would cross them (HF jobs counted at their estimated cost while they run)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage

import ml_intern.graph.accounting as accounting
import ml_intern.tools.jobs.tool as jobs
import ml_intern.tools.local.files as files
import ml_intern.tools.research as research
from ml_intern.graph.accounting import call_usage, format_usage, price, track_jobs, turn_usage
from ml_intern.graph.budget import OUTPUT_ALLOWANCE
from ml_intern.model.ids import ModelSpec
from ml_intern.session.session import open_session
from ml_intern.tools.base import ToolEnv
from tests.fakes.jobs_server import FakeJobsHub, Plan
from tests.harness_graph import (
    TINY,
    TOOLS,
    assert_every_call_answered,
    first_turn,
    old_sqlite_database,
    open_agent,
    saved_snapshot,
    thread_row,
)

SONNET = "anthropic/claude-sonnet-4-5"
_ids = itertools.count(1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def reply(text: str = "", *calls: tuple[str, dict], tokens: tuple[int, int] = (1000, 100), cached: int = 0):
    """An assistant reply with its usage numbers, calling `calls` (name, args) with unique ids."""
    usage: dict[str, Any] = {
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "total_tokens": sum(tokens),
    }
    if cached:
        usage["input_token_details"] = {"cache_read": cached}
    tool_calls = [{"name": name, "args": args, "id": f"acct_{next(_ids)}"} for name, args in calls]
    return AIMessage(content=text, tool_calls=tool_calls, usage_metadata=usage)


def echo_call(value: str = "a") -> tuple[str, dict]:
    return ("echo", {"value": value})


def table_cost(entry_name: str, tokens_in: int, tokens_out: int, cached: int = 0) -> float:
    """What a call costs by the table's per-token prices, computed independently of litellm's functions."""
    entry = accounting._price_table()[entry_name]
    uncached = (tokens_in - cached) * entry["input_cost_per_token"]
    return (
        uncached + cached * entry["cache_read_input_token_cost"] + tokens_out * entry["output_cost_per_token"]
    )


def priced_as(agent: Any, model: str) -> None:
    """Make the agent's services report `model`, so its calls are priced from the table."""
    agent.ctx.services.model = ModelSpec(model_id=model, litellm_model=model)


# ---- prices ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "entry"), [(SONNET, "claude-sonnet-4-5"), ("openai/gpt-4o", "gpt-4o")])
def test_known_models_are_priced_with_cached_input_at_the_cache_read_price(model: str, entry: str) -> None:
    assert price(model, 10_000, 500, cached=4_000) == pytest.approx(table_cost(entry, 10_000, 500, 4_000))
    assert price(model, 10_000, 500, cached=4_000) < price(model, 10_000, 500)


@pytest.mark.parametrize(
    "model",
    [
        "openai/scripted",  # not in the table
        "test/scripted",  # not even a provider
        "openai/Qwen/Qwen2.5-7B-Instruct",  # a vllm/ollama model, as litellm is asked for it
        "huggingface/moonshotai/Kimi-K2-Instruct",  # litellm's model info says 0, its table has no entry
        "",
    ],
)
def test_models_missing_from_the_table_have_no_price(model: str) -> None:
    assert price(model, 1000, 100) is None


def test_call_usage_prices_a_known_model_from_its_tokens() -> None:
    usage = call_usage(reply(tokens=(2_000, 300), cached=1_500), SONNET)
    assert usage["cost_usd"] == pytest.approx(table_cost("claude-sonnet-4-5", 2_000, 300, 1_500))
    assert (usage["input_tokens"], usage["output_tokens"], usage["cached_tokens"]) == (2_000, 300, 1_500)


@pytest.mark.parametrize(
    ("response_cost", "expected"),
    [(None, None), (0.0, None), (0.25, 0.25)],  # litellm's 0.0 for a model it cannot price is not "free"
)
def test_unknown_model_keeps_only_a_real_provider_cost(response_cost: Any, expected: Any) -> None:
    message = reply()
    message.response_metadata["response_cost"] = response_cost
    assert call_usage(message, "openai/scripted")["cost_usd"] == expected


def test_a_reply_without_usage_numbers_has_no_cost_even_for_a_known_model() -> None:
    assert call_usage(AIMessage(content="hi"), SONNET)["cost_usd"] is None


def test_format_usage_never_shows_an_unknown_cost_as_zero() -> None:
    unknown = {"input_tokens": 1200, "output_tokens": 30, "cached_tokens": 0, "calls": 2, "cost_usd": None}
    assert "cost unknown" in format_usage(unknown) and "$0" not in format_usage(unknown)
    known = {**unknown, "cost_usd": 0.5, "research_calls": 1, "research_cost_usd": 0.2}
    assert format_usage(known) == (
        "1,200 tokens in (0 cached), 30 out, 2 model call(s), cost $0.5000 (incl. research 1 call(s) $0.2000)"
    )


# ---- totals in the running graph ---------------------------------------------------------------------------


async def test_calls_turns_and_thread_totals_add_up(db: Path) -> None:
    answers = [
        reply("", echo_call(), tokens=(1_000, 100), cached=600),
        reply("one", tokens=(1_500, 50), cached=900),
        reply("two", tokens=(2_000, 70)),
    ]
    costs = [table_cost("claude-sonnet-4-5", *t) for t in [(1_000, 100, 600), (1_500, 50, 900), (2_000, 70)]]
    async with open_agent(db, answers, stream=False) as agent:
        priced_as(agent, SONNET)
        first = await agent.send("first")
        second = await agent.send("second")
    assert first.usage["cost_usd"] == pytest.approx(costs[0] + costs[1])
    assert second.thread_usage["cost_usd"] == pytest.approx(sum(costs))
    values = (await saved_snapshot(db)).values
    turn = turn_usage(values)
    assert (turn["input_tokens"], turn["output_tokens"], turn["calls"]) == (2_000, 70, 1)
    assert turn["cost_usd"] == pytest.approx(costs[2])
    assert values["usage"] == second.thread_usage and second.usage == turn
    assert [m.response_metadata["cost_usd"] for m in values["messages"] if m.type == "ai"] == pytest.approx(
        costs
    )
    row = thread_row(db)
    assert row["cost_usd"] == pytest.approx(sum(costs)) and row["cached_tokens"] == 1_500
    assert (row["input_tokens"], row["output_tokens"]) == (4_500, 220)


async def test_an_unknown_price_stays_unknown_end_to_end(db: Path) -> None:
    async with open_agent(db, [reply("", echo_call()), reply("done")]) as agent:  # model test/scripted
        outcome = await agent.send("go")
        [listed] = await agent.session.threads.list()
    values = (await saved_snapshot(db)).values
    assert outcome.usage["cost_usd"] is None and turn_usage(values)["cost_usd"] is None
    assert [m.response_metadata["cost_usd"] for m in values["messages"] if m.type == "ai"] == [None, None]
    assert thread_row(db)["cost_usd"] is None and listed.cost_usd is None
    assert listed.usage == outcome.usage and "cost unknown" in format_usage(listed.usage)


async def test_a_turn_whose_first_call_failed_has_no_usage_yet(db: Path) -> None:
    async with open_agent(db, [reply("one"), ValueError("the provider rejected the request")]) as agent:
        await agent.send("first")
        with pytest.raises(ValueError):
            await agent.send("second")
    values = (await saved_snapshot(db)).values
    assert (values["usage"]["calls"], turn_usage(values)["calls"], turn_usage(values)["cost_usd"]) == (
        1,
        0,
        0.0,
    )


async def test_compaction_is_counted_in_its_turn_and_labelled(db: Path) -> None:
    await first_turn(db)
    answers = [reply("- read pages 1-3", tokens=(900, 40)), reply("Accuracy reported.", tokens=(500, 20))]
    async with open_agent(db, answers, tools=TOOLS, config=TINY) as agent:
        outcome = await agent.send("now run it")
    assert outcome.stop_reason == "end_turn"
    turn = turn_usage((await saved_snapshot(db)).values)
    assert (turn["calls"], turn["input_tokens"], turn["output_tokens"]) == (2, 1_400, 60)
    assert (turn["compaction_calls"], turn["compaction_input_tokens"], turn["compactions"]) == (1, 900, 1)
    assert outcome.usage["compaction_calls"] == 1


async def test_research_sub_agent_is_counted_in_its_turn_and_labelled(db: Path, tmp_path: Path) -> None:
    env = ToolEnv(workdir=tmp_path, home=tmp_path / "home")
    answers = [
        reply("", ("research", {"task": "how to fine-tune?"}), tokens=(100, 10)),  # parent
        reply("Recipe: LoRA r=16", tokens=(300, 30)),  # the sub-agent's answer
        reply("Use LoRA.", tokens=(200, 20)),  # parent
    ]
    async with open_agent(db, answers, tools=research.make_tools(env) + files.make_tools(env)) as agent:
        await agent.send("research first")
    turn = turn_usage((await saved_snapshot(db)).values)
    assert (turn["calls"], turn["input_tokens"], turn["research_calls"], turn["research_input_tokens"]) == (
        3,
        600,
        1,
        300,
    )


async def test_thread_table_of_an_older_database_gains_the_new_columns(db: Path) -> None:
    old_sqlite_database(
        db, "INSERT INTO ml_intern_threads VALUES ('old1', 'hi', 'm', '/w', 1, 2, 1, 'end_turn', 5, 6, 0.1)"
    )
    async with open_session(db) as session:
        [old] = await session.threads.list()
        await session.threads.end_turn(
            "old1", "end_turn", {"input_tokens": 7, "cached_tokens": 3, "cost_usd": 0.2}
        )
        updated = await session.threads.find("old1")
    assert (old.thread_id, old.input_tokens, old.cost_usd, old.cached_tokens, old.usage) == (
        "old1",
        5,
        0.1,
        0,
        {},
    )
    assert (updated.cached_tokens, updated.usage["input_tokens"], updated.cost_usd) == (3, 7, 0.2)


# ---- budgets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "calls_made"), [(1_000, 0), (3_000, 1), (4_000, 2), (100_000, 3)])
@pytest.mark.parametrize("where", ["context", "config"])
async def test_token_budget_stops_before_the_call_that_would_cross_it(
    db: Path, limit: int, calls_made: int, where: str
) -> None:
    # each call: 1,000 in + 100 out; the next is estimated at the last prompt+reply (1,100) + 1,000 output:
    # before call 1 ~1,030 tokens, before call 2 1,100 + ~2,100, before call 3 2,200 + ~2,100
    answers = [reply("", echo_call("a")), reply("", echo_call("b")), reply("done")]
    settings = {"max_tokens": limit} if where == "context" else {"config": {"max_tokens": limit}}
    async with open_agent(db, answers, **settings) as agent:
        outcome = await agent.send("go")
    assert len(agent.model.calls) == calls_made
    saved = await saved_snapshot(db)
    assert_every_call_answered(saved.values["messages"])
    if calls_made == 3:
        assert outcome.stop_reason == "end_turn" and "error" not in agent.event_types()
        return
    assert outcome.stop_reason == saved.values["stop_reason"] == thread_row(db)["stop_reason"] == "budget"
    [error] = [e for e in agent.events if e["type"] == "error"]
    assert error["message"].startswith("Token budget reached") and f"{limit:,}" in error["message"]


async def test_cost_budget_stops_before_the_call_that_would_cross_it(db: Path) -> None:
    per_call = table_cost("claude-sonnet-4-5", 10_000, 1_000)
    upcoming = price(SONNET, 11_001, OUTPUT_ALLOWANCE)  # last prompt + reply + "echo:a"
    limit = (per_call + upcoming + 2 * per_call + upcoming) / 2  # call 2 fits, call 3 would not
    answers = [reply("", echo_call(), tokens=(10_000, 1_000)) for _ in range(3)]
    async with open_agent(db, answers, max_cost_usd=limit) as agent:
        priced_as(agent, SONNET)
        outcome = await agent.send("go")
    assert (outcome.stop_reason, len(agent.model.calls)) == ("budget", 2)
    [error] = [e for e in agent.events if e["type"] == "error"]
    assert error["message"].startswith(f"Cost budget reached: this turn spent ${2 * per_call:.4f}")


async def test_budget_counts_the_current_turn_only(db: Path) -> None:
    # turn 2 alone needs ~2,100 tokens (fits); with turn 1's 1,100 it would not
    async with open_agent(db, [reply("one"), reply("two")], max_tokens=2_500) as agent:
        first = await agent.send("first")
        second = await agent.send("second")
    assert (first.stop_reason, second.stop_reason, len(agent.model.calls)) == ("end_turn", "end_turn", 2)


async def test_running_hf_jobs_count_at_their_estimated_cost_until_they_end(db: Path, tmp_path: Path) -> None:
    def run(flavor: str = "a10g-large", timeout: str = "1h") -> tuple[str, dict]:  # $1.50 at most
        args = {"command": ["sleep", "1000"], "wait": False, "hardware_flavor": flavor, "timeout": timeout}
        return ("hf_jobs", {"operation": "run", **args})

    first_job = f"{1:024x}"  # the fake hub numbers its jobs
    answers = [
        reply("", run()),
        reply("", ("hf_jobs", {"operation": "cancel", "job_id": first_job})),
        reply("", run()),
        reply("", run()),  # made: one $1.50 job is running
        reply("never sent"),  # two are: $3.00 > $2.00
    ]
    with FakeJobsHub() as hub:
        hub.plan = Plan(hold=True)
        env = ToolEnv(workdir=tmp_path, home=tmp_path / "home", hf_endpoint=hub.url, hf_token=hub.token)
        async with open_agent(
            db, answers, tools=jobs.make_tools(env), approval="auto", max_cost_usd=2.0
        ) as agent:
            outcome = await agent.send("train")
    assert (outcome.stop_reason, len(agent.model.calls)) == ("budget", 4)
    running = [job_id for job_id, job in hub.jobs.items() if job.info["status"]["stage"] == "RUNNING"]
    assert (await saved_snapshot(db)).values["turn_jobs"] == dict.fromkeys(running, 1.5) and len(running) == 2
    [error] = [e for e in agent.events if e["type"] == "error"]
    assert "plus up to $3.00 for 2 running HF job(s)" in error["message"]
    notices = [e for e in agent.events if e["type"] == "tool_log" and e.get("notice")]
    warnings = [e["text"] for e in notices if e["tool"] == "budget"]
    assert warnings == ["no price known for test/scripted: the cost budget counts only HF jobs"]


def job_result(artifact: dict[str, Any] | None) -> ToolMessage:
    text = "Job submitted: abc\nURL: ...\nHardware: a10g-large, timeout 1h (est. at most $9.00)"
    return ToolMessage(content=text, tool_call_id=f"call_{next(_ids)}", name="hf_jobs", artifact=artifact)


def job(job_id: str, state: str, cost: float | None = None) -> dict[str, Any]:
    return {"job": {"id": job_id, "state": state, "max_cost_usd": cost}}


def test_the_budget_reads_jobs_from_the_tool_artifacts_not_their_text() -> None:
    started = [job_result(job("j1", "started", 1.5)), job_result(job("j2", "started")), job_result(None)]
    assert track_jobs({}, started) == {"j1": 1.5, "j2": None}  # the text without an artifact counts nothing
    later = [job_result(job("j1", "ended")), job_result(job("j3", "running"))]
    assert track_jobs({"j1": 1.5, "j2": None}, later) == {"j2": None}  # seen running: not started this turn


async def test_the_jobs_tool_reports_the_job_and_its_estimate(db: Path, tmp_path: Path) -> None:
    first_job = f"{1:024x}"  # the fake hub numbers its jobs
    run = {"operation": "run", "command": ["sleep", "1000"], "wait": False, "timeout": "1h"}
    answers = [
        reply("", ("hf_jobs", {**run, "hardware_flavor": "a10g-large"})),  # $1.50 at most
        reply("", ("hf_jobs", {"operation": "cancel", "job_id": first_job})),
        reply("done"),
    ]
    with FakeJobsHub() as hub:
        hub.plan = Plan(hold=True)
        env = ToolEnv(workdir=tmp_path, home=tmp_path / "home", hf_endpoint=hub.url, hf_token=hub.token)
        async with open_agent(db, answers, tools=jobs.make_tools(env), approval="auto") as agent:
            await agent.send("train")
    results = [m for m in (await saved_snapshot(db)).values["messages"] if isinstance(m, ToolMessage)]
    assert [m.artifact for m in results] == [job(first_job, "started", 1.5), job(first_job, "ended")]
