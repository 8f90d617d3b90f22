"""The `research` tool: a sub-agent with its own context and read-only tools that returns a concise recipe."""

from __future__ import annotations

import asyncio
import json
import warnings
from contextlib import aclosing
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.configs.prompt import research_prompt
from ml_intern.configs.schema import EFFORT_LEVELS
from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.routing import recursion_limit
from ml_intern.graph.turns import new_turn
from ml_intern.tools.base import ToolEnv, ToolError, ToolFacts, emit
from ml_intern.tools.registry import read_only_tools
from ml_intern.tools.research_budget import ContextBudget, final_answer, for_sub_agent, without_compaction

# The sub-agent keeps no checkpoints; LangGraph warns that the parent's durability setting does nothing.
warnings.filterwarnings("ignore", message="`durability` has no effect")

DESCRIPTION = (
    "A sub-agent researches with read-only tools (papers, docs, Hub, GitHub, web) and returns a recipe with "
    "sources. Use before training code; run several at once."
)


class ResearchArgs(BaseModel):
    task: str = Field(description="question, constraints")
    context: str = Field("", description="What is known")


async def run_research(task: str, context: str) -> tuple[str, dict[str, Any]]:
    """Run the sub-agent graph (no checkpointer: its context is thrown away) and return its answer."""
    from langgraph.runtime import get_runtime

    from ml_intern.graph.builder import build_graph  # the graph's nodes run tools: not at import time

    parent = get_runtime(RunContext).context
    if parent is None or parent.services is None:
        raise ToolError("research runs only inside an agent run")
    budget = ContextBudget()
    tools = [for_sub_agent(t, budget) for t in read_only_tools(parent.services.tools) if t.name != "research"]
    system = await asyncio.to_thread(research_prompt, [tool.name for tool in tools])  # reads a file
    sub = sub_agent_context(parent, tools, system)
    budget.fit(await asyncio.to_thread(lambda: sub.services.context_window))  # may read litellm's table
    prompt = f"{task}\n\nAlready known:\n{context}" if context else task
    state: dict[str, Any] = {}
    stream = build_graph(checkpointer=False).astream(
        new_turn(prompt),
        {"recursion_limit": recursion_limit(sub.max_iterations)},
        context=sub,
        stream_mode=["custom", "values"],
        durability="exit",
    )
    async with aclosing(stream):
        async for mode, chunk in stream:
            if mode == "values":
                state = chunk
                if budget.measure(chunk):  # before the next call, and before compaction could run
                    break
            elif chunk.get("type") == "tool_call":
                args = json.dumps(chunk["args"])[:80]
                emit(events.tool_log("research", f"▸ {chunk['tool']} {args} · {budget.tokens:,} tokens"))
            elif chunk.get("type") == "llm_call":
                emit({**chunk, "kind": "research"})
    return await final_answer(sub, state, budget)


def sub_agent_context(parent: RunContext, tools: list[BaseTool], prompt: str) -> RunContext:
    """The sub-agent's run: `research.model` (else the parent's), `tools`, `prompt`, no human to ask."""
    services = parent.services
    changes: dict[str, Any] = {"tools": tools, "prompt": prompt, "mcp": None, "warnings": []}
    changes["config"] = without_compaction(services.config)
    model_id = services.config.research.model
    if model_id:
        changes |= _research_model(services, model_id)
    return RunContext(
        model=model_id or parent.model,
        workdir=parent.workdir,
        approval={"ask": "deny", "yolo": "auto"}.get(parent.approval, parent.approval),
        reasoning_effort=capped_effort(parent.reasoning_effort),
        max_iterations=services.config.research.max_iterations,
        # no MCP tool is read-only; the sub-agent's warnings are its own
        services=services.copy(**changes),
    )


def _research_model(services: Any, model_id: str) -> dict[str, Any]:
    """The Services fields for the configured research model, resolved like the main one."""
    from ml_intern.model.ids import resolve_model

    environ = services.env.environ if services.env is not None else {}
    try:
        spec = resolve_model(model_id, environ, services.config)
    except Exception as error:  # an unknown id or a missing endpoint: the main agent reads why
        raise ToolError(f"research.model '{model_id}' cannot be used: {error}") from None
    unbuilt = {"chat_model": None, "context_window": None}  # built for `spec` on first use
    return {"model": spec, **unbuilt, "effort_cache": {}, "refused_thinking": set()}


def capped_effort(level: str | None) -> str | None:
    """The parent's reasoning effort, at most "high" (the original's cap for the sub-agent)."""
    if level in EFFORT_LEVELS and EFFORT_LEVELS.index(level) > EFFORT_LEVELS.index("high"):
        return "high"
    return level


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The research tool; it finds the model and tools of the run it is called from."""

    async def research(task: str, context: str = "") -> tuple[str, dict[str, Any]]:
        return await run_research(task, context)

    return [
        StructuredTool.from_function(
            coroutine=research,
            name="research",
            description=DESCRIPTION,
            args_schema=ResearchArgs,
            response_format="content_and_artifact",
        )
    ]


TOOL_FACTS = {"research": ToolFacts(effect="nothing")}  # its sub-agent gets only tools that change nothing
