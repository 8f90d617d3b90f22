"""The `research` tool: a sub-agent with its own context and read-only tools that returns a concise recipe."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.configs.prompt import research_prompt
from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.routing import recursion_limit
from ml_intern.graph.turns import new_turn
from ml_intern.tools.base import ToolEnv, ToolError, ToolFacts, emit
from ml_intern.tools.registry import read_only_tools

# The sub-agent keeps no checkpoints; LangGraph warns that the parent's durability setting does nothing.
warnings.filterwarnings("ignore", message="`durability` has no effect")

DESCRIPTION = (
    "Delegate a research question to a sub-agent with its own context and read-only tools (papers, docs, "
    "Hub, datasets, GitHub, web). It goes papers -> methods -> datasets -> code and returns a concise recipe "
    "with sources. Use it before writing non-trivial training code; several can run in parallel."
)


class ResearchArgs(BaseModel):
    task: str = Field(description="The question, with constraints (model size, hardware, data, goal).")
    context: str = Field("", description="What is already known or decided, to avoid repeating it.")


async def run_research(task: str, context: str) -> tuple[str, dict[str, Any]]:
    """Run the sub-agent graph (no checkpointer: its context is thrown away) and return its answer."""
    from langgraph.runtime import get_runtime

    from ml_intern.graph.builder import build_graph  # the graph's nodes run tools: not at import time

    parent = get_runtime(RunContext).context
    if parent is None or parent.services is None:
        raise ToolError("research runs only inside an agent run")
    tools = [tool for tool in read_only_tools(parent.services.tools) if tool.name != "research"]
    system = await asyncio.to_thread(research_prompt, [tool.name for tool in tools])  # reads a file
    sub = sub_agent_context(parent, tools, system)
    prompt = f"{task}\n\nAlready known:\n{context}" if context else task
    state: dict[str, Any] = {}
    async for mode, chunk in build_graph(checkpointer=False).astream(
        new_turn(prompt),
        {"recursion_limit": recursion_limit(sub.max_iterations)},
        context=sub,
        stream_mode=["custom", "values"],
        durability="exit",
    ):
        if mode == "values":
            state = chunk
        elif chunk.get("type") == "tool_call":
            emit(events.tool_log("research", f"→ {chunk['tool']} {json.dumps(chunk['args'])[:150]}"))
    return _answer(state)


def sub_agent_context(parent: RunContext, tools: list[BaseTool], prompt: str) -> RunContext:
    """The sub-agent's run: the parent's model with `tools` and `prompt`, and no human to ask."""
    services = parent.services
    return RunContext(
        model=parent.model,
        workdir=parent.workdir,
        approval={"ask": "deny", "yolo": "auto"}.get(parent.approval, parent.approval),
        reasoning_effort=parent.reasoning_effort,
        max_iterations=services.config.research.max_iterations,
        # no MCP tool is read-only; the sub-agent's warnings are its own
        services=services.copy(tools=tools, prompt=prompt, mcp=None, warnings=[]),
    )


def _answer(state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    replies = [m for m in state.get("messages", []) if m.type == "ai" and m.text.strip()]
    if not replies:
        raise ToolError(f"the research sub-agent ended without an answer ({state.get('stop_reason')})")
    usage = state.get("usage") or {}
    return replies[-1].text, {"usage": usage, "label": "research"}


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
