"""The research sub-agent's context budget: it grows gradually, the summary is forced before compaction."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage

import ml_intern.tools.local.files as files
import ml_intern.tools.research as research
from ml_intern.tools.base import ToolEnv
from tests.harness_graph import calls, open_agent, tool_messages

WARNING = "[SYSTEM: You have used 75% of your context budget. Start wrapping up: finish the recipe soon.]"


def using(tokens: int, reply: AIMessage) -> AIMessage:
    """`reply` reporting a context of `tokens` input tokens."""
    reply.usage_metadata = {"input_tokens": tokens, "output_tokens": 10, "total_tokens": tokens + 10}
    return reply


def read_tools(tmp_path: Path) -> list:
    (tmp_path / "big.txt").write_text("".join(f"line {n} of a long log file\n" for n in range(3_000)))
    env = ToolEnv(workdir=tmp_path, home=tmp_path / "home")
    return research.make_tools(env) + files.make_tools(env)


def read(offset: int) -> dict:
    return {"path": "big.txt", "offset": offset}


async def test_gradual_growth_forces_the_context_summary_without_compacting(tmp_path: Path) -> None:
    answers = [
        calls(("research", {"task": "read the log"})),  # parent
        using(150_000, calls(("read", read(1)))),  # past 75% of 190k: warned
        using(175_000, calls(("read", read(500)))),  # past the main agent's 170k compaction threshold
        using(189_000, calls(("read", read(1000)))),  # its ~2k-token answer takes the next prompt past 190k
        "Summary: the log has 3000 lines.",  # the forced summary, not a compaction
        "Done.",  # parent
    ]
    async with open_agent(tmp_path / "c.sqlite", answers, tools=read_tools(tmp_path)) as agent:
        outcome = await agent.send("go")
    assert outcome.final_response == "Done." and len(agent.model.calls) == 6
    summary_request = agent.model.calls[4]
    assert (
        "CONTEXT LIMIT REACHED" in summary_request[-1].content and "tools" not in agent.model.call_kwargs[4]
    )
    results = tool_messages(summary_request)
    assert len(results) == 3 and results[0].content.endswith(WARNING)  # all three reads ran and are kept
    assert not [e for e in agent.events if e["type"] in ("compacted", "error")]
    kinds = [e["kind"] for e in agent.events if e["type"] == "llm_call"]
    assert kinds == ["main", "research", "research", "research", "research", "main"]  # the summary too
    [result] = tool_messages(agent.model.calls[-1])
    assert result.content == "Summary: the log has 3000 lines."


async def test_small_window_limits_the_budget_to_ninety_percent_of_it(tmp_path: Path) -> None:
    answers = [
        calls(("research", {"task": "read the log"})),  # parent
        using(30_000, calls(("read", read(1)))),  # past 75% of 36k (90% of the 40k window): warned
        using(35_000, calls(("read", read(500)))),  # its answer takes the next prompt past 36k
        "Summary: 3000 lines.",
        "Done.",
    ]
    async with open_agent(tmp_path / "c.sqlite", answers, tools=read_tools(tmp_path)) as agent:
        agent.ctx.services.context_window = 40_000
        outcome = await agent.send("go")
    assert outcome.final_response == "Done."
    summary_request = agent.model.calls[3]
    assert "CONTEXT LIMIT REACHED" in summary_request[-1].content
    assert [m.content.endswith(WARNING) for m in tool_messages(summary_request)] == [True, False]
    assert not [e for e in agent.events if e["type"] in ("compacted", "error")]
