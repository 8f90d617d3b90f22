"""plan_tool and its continuation guard; the research sub-agent; the size of the first request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ml_intern.tools.local.files as files
import ml_intern.tools.local.plan as plan
import ml_intern.tools.research as research
from ml_intern.graph.messages import is_guard
from ml_intern.tools.base import ToolEnv
from tests.fakes.llm_server import text
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


@pytest.mark.e2e
async def test_first_request_fits_the_prompt_budget(llm_server, subprocess_env, tmp_path, ml_intern_cli):
    """System prompt plus every tool schema stay under 24 KB (the original sent 56 KB)."""
    import subprocess

    llm_server.push(text("hi"))
    env = {**subprocess_env, "VLLM_BASE_URL": llm_server.url}
    cmd = [str(ml_intern_cli), "--model", "vllm/scripted", "x"]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    body = llm_server.requests[0]
    size = len(json.dumps({"messages": body["messages"], "tools": body["tools"]}))
    names = {t["function"]["name"] for t in body["tools"]}
    assert {"research", "plan_tool", "hf_jobs", "hub_repo_search", "bash"} <= names
    assert size < 24_000, size


async def test_plan_tool_streams_its_items_as_a_plan_update(tmp_path, db):
    plan_args = todos("completed", "in_progress")
    answers = [calls(("plan_tool", plan_args)), "ok", "ok then", "ok!"]
    async with open_agent(db, answers, tools=plan.make_tools(env_for(tmp_path))) as agent:
        await agent.send("plan it")
    updates = [e for e in agent.events if e["type"] == "plan_update"]
    assert updates == [{"type": "plan_update", "plan": plan_args["todos"]}]
