"""plan_tool and its continuation guard; the research sub-agent, its budgets and its model."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

import ml_intern.tools.local.files as files
import ml_intern.tools.local.plan as plan
import ml_intern.tools.research as research
from ml_intern.graph.messages import is_guard
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.research_budget import TOOL_OUTPUT_CHARS
from tests.fakes.llm_server import ScriptedLLMServer, text
from tests.harness_graph import calls, open_agent, tool_messages


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def env_for(tmp_path: Path) -> ToolEnv:
    return ToolEnv(workdir=tmp_path, home=tmp_path / "home")


def todos(*statuses: str) -> dict:
    return {"todos": [{"id": str(i), "content": f"step {i}", "status": s} for i, s in enumerate(statuses)]}


async def test_plan_tool_returns_a_checklist(tmp_path, db):
    answers = [calls(("plan_tool", todos("completed", "in_progress", "pending"))), "ok", "ok then", "ok!"]
    async with open_agent(db, answers, tools=plan.make_tools(env_for(tmp_path))) as agent:
        await agent.send("plan it")
    [result] = tool_messages(agent.model.calls[1])
    assert result.content == "Plan (1/3 done):\n- [x] step 0\n- [~] step 1\n- [ ] step 2"


async def test_plan_tool_rejects_two_items_in_progress(tmp_path, db):
    answers = [calls(("plan_tool", todos("in_progress", "in_progress"))), "ok"]
    async with open_agent(db, answers, tools=plan.make_tools(env_for(tmp_path))) as agent:
        await agent.send("plan it")
    [result] = tool_messages(agent.model.calls[-1])
    assert result.status == "error" and "at most one item in_progress" in result.content


async def test_unfinished_plan_reprompts_a_final_answer_at_most_twice(tmp_path, db):
    answers = [calls(("plan_tool", todos("completed", "pending"))), "done!", "really done", "I stop here"]
    async with open_agent(db, answers, tools=plan.make_tools(env_for(tmp_path))) as agent:
        outcome = await agent.send("work")
    assert outcome.stop_reason == "end_turn" and outcome.final_response == "I stop here"
    guards = [m for m in agent.model.calls[-1] if is_guard(m)]
    assert len(guards) == 2 and "step 1" in guards[0].content


async def test_completed_plan_ends_the_turn_at_once(tmp_path, db):
    answers = [calls(("plan_tool", todos("completed", "completed"))), "all done"]
    async with open_agent(db, answers, tools=plan.make_tools(env_for(tmp_path))) as agent:
        outcome = await agent.send("work")
    assert outcome.final_response == "all done" and len(agent.model.calls) == 2


async def test_research_runs_a_sub_agent_with_read_only_tools(tmp_path, db):
    (tmp_path / "notes.md").write_text("LoRA r=16 works well\n")
    env = env_for(tmp_path)
    tools = research.make_tools(env) + files.make_tools(env)
    answers = [
        calls(("research", {"task": "how to fine-tune?"})),  # parent
        calls(("read", {"path": "notes.md"})),  # sub-agent
        "Recipe: LoRA r=16 (from notes.md)",  # sub-agent's answer
        "Use LoRA.",  # parent's final answer
    ]
    async with open_agent(db, answers, tools=tools) as agent:
        outcome = await agent.send("research first")
    assert outcome.final_response == "Use LoRA."
    sub_prompt = agent.model.calls[1]
    assert "research sub-agent" in sub_prompt[0].content and sub_prompt[1].content == "how to fine-tune?"
    sub_tools = {t["function"]["name"] for t in agent.model.call_kwargs[1]["tools"]}
    assert sub_tools == {"read"}  # only the read-only subset of what the parent has
    [result] = tool_messages(agent.model.calls[-1])
    assert result.content == "Recipe: LoRA r=16 (from notes.md)"
    assert outcome.usage["calls"] == 4 and outcome.usage["research_calls"] == 2
    assert all(m.type != "tool" or m.name == "research" for m in agent.model.calls[-1])


async def test_plan_tool_streams_its_items_as_a_plan_update(tmp_path, db):
    plan_args = todos("completed", "in_progress")
    answers = [calls(("plan_tool", plan_args)), "ok", "ok then", "ok!"]
    async with open_agent(db, answers, tools=plan.make_tools(env_for(tmp_path))) as agent:
        await agent.send("plan it")
    updates = [e for e in agent.events if e["type"] == "plan_update"]
    assert updates == [{"type": "plan_update", "plan": plan_args["todos"]}]


def using(tokens: int, reply: AIMessage) -> AIMessage:
    """`reply` reporting a context of `tokens` input tokens."""
    reply.usage_metadata = {"input_tokens": tokens, "output_tokens": 10, "total_tokens": tokens + 10}
    return reply


async def test_research_summarises_without_tools_when_its_iterations_run_out(tmp_path, db):
    (tmp_path / "notes.md").write_text("LoRA r=16 works well\n")
    env = env_for(tmp_path)
    answers = [
        calls(("research", {"task": "how to fine-tune?"})),  # parent
        calls(("read", {"path": "notes.md"})),  # sub-agent, iteration 1
        calls(("read", {"path": "notes.md"})),  # sub-agent, iteration 2: the cap
        "| paper | recipe |\n| notes | LoRA r=16 |",  # the forced summary
        "Use LoRA.",  # parent
    ]
    config = {"research": {"max_iterations": 2}}
    async with open_agent(
        db, answers, tools=research.make_tools(env) + files.make_tools(env), config=config
    ) as agent:
        outcome = await agent.send("research first")
    assert outcome.final_response == "Use LoRA."
    summary_request, summary_kwargs = agent.model.calls[3], agent.model.call_kwargs[3]
    assert (
        "ITERATION LIMIT REACHED" in summary_request[-1].content
        and "Do not call tools" in summary_request[-1].content
    )
    assert "tools" not in summary_kwargs
    assert [m.type for m in summary_request[-4:-1]] == ["tool", "ai", "tool"]  # what it found, kept
    [result] = tool_messages(agent.model.calls[-1])
    assert result.content == "| paper | recipe |\n| notes | LoRA r=16 |"
    assert outcome.usage["research_calls"] == 3  # two steps and the summary, all counted
    logs = [e["text"] for e in agent.events if e["type"] == "tool_log" and e["tool"] == "research"]
    assert logs[0].startswith('▸ read {"path": "notes.md"} · ') and "iteration limit reached" in logs[-1]


async def test_research_is_warned_then_summarises_at_its_context_limit(tmp_path, db):
    (tmp_path / "big.txt").write_text("".join(f"line {n} of a long log file\n" for n in range(3_000)))
    env = env_for(tmp_path)
    answers = [
        calls(("research", {"task": "read the log"})),  # parent
        using(150_000, calls(("read", {"path": "big.txt"}))),  # past 75% of 190k: the tool answer warns
        using(195_000, calls(("read", {"path": "big.txt", "offset": 2000}))),  # past the limit: never run
        "Summary: the log has 3000 lines.",  # the forced summary
        "Done.",  # parent
    ]
    async with open_agent(db, answers, tools=research.make_tools(env) + files.make_tools(env)) as agent:
        outcome = await agent.send("go")
    assert outcome.final_response == "Done."
    summary_request = agent.model.calls[3]
    assert (
        "CONTEXT LIMIT REACHED" in summary_request[-1].content and "tools" not in agent.model.call_kwargs[3]
    )
    [read_result] = tool_messages(summary_request)  # the unanswered second read was dropped
    assert read_result.content.endswith(
        "[SYSTEM: You have used 75% of your context budget. Start wrapping up: finish the recipe soon.]"
    )
    assert len(read_result.content) < TOOL_OUTPUT_CHARS + 200  # cut to 8,000 inside the sub-agent
    [result] = tool_messages(agent.model.calls[-1])
    assert result.content == "Summary: the log has 3000 lines."


async def test_research_uses_the_configured_research_model(tmp_path, db, llm_server: ScriptedLLMServer):
    llm_server.push(text("Recipe from the small model: LoRA r=16."))
    env = env_for(tmp_path)
    answers = [calls(("research", {"task": "how to fine-tune?"})), "Use LoRA."]
    config = {"research": {"model": "vllm/research-small"}}
    async with open_agent(
        db, answers, tools=research.make_tools(env), config=config, reasoning_effort="max"
    ) as agent:
        agent.ctx.services.env = ToolEnv(
            workdir=tmp_path, home=tmp_path, environ={"VLLM_BASE_URL": llm_server.url}
        )
        outcome = await agent.send("research first")
    assert (
        outcome.final_response == "Use LoRA." and len(agent.model.calls) == 2
    )  # the parent's model: 2 calls
    (request,) = llm_server.requests
    assert request["model"] == "research-small"
    assert "research sub-agent" in request["messages"][0]["content"]
    [result] = tool_messages(agent.model.calls[-1])
    assert result.content == "Recipe from the small model: LoRA r=16."


@pytest.mark.parametrize(
    ("asked", "sent"), [("max", "high"), ("xhigh", "high"), ("medium", "medium"), (None, None)]
)
def test_research_effort_is_capped_at_high(asked, sent):
    assert research.capped_effort(asked) == sent
