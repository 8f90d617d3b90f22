"""The `research` tool: a sub-agent with its own context and read-only tools that returns a concise recipe."""

from __future__ import annotations

import json
import warnings
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.tools.base import ToolEnv, ToolError, emit

# The sub-agent keeps no checkpoints; LangGraph warns that the parent's durability setting does nothing.
warnings.filterwarnings("ignore", message="`durability` has no effect")

READ_ONLY_TOOLS = (
    "hf_papers",
    "explore_hf_docs",
    "fetch_hf_docs",
    "web_search",
    "hub_repo_search",
    "hub_repo_details",
    "hf_inspect_dataset",
    "github_find_examples",
    "github_list_repos",
    "github_read_file",
    "read",
)
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

    from ml_intern.configs.prompt import research_prompt
    from ml_intern.graph.builder import build_graph
    from ml_intern.graph.context import RunContext, services_of
    from ml_intern.services import Services
    from ml_intern.session.runner import new_turn

    parent = get_runtime(RunContext).context or RunContext()
    services = services_of(parent)
    tools = [t for t in services.tools if t.name in READ_ONLY_TOOLS]
    settings = services.config.research
    sub = RunContext(
        model=parent.model,
        workdir=parent.workdir,
        approval="deny" if parent.approval == "ask" else parent.approval,  # no human inside a sub-agent
        max_iterations=settings.max_iterations,
        services=Services(
            model=services.model,
            chat_model=services.chat_model,
            tools=tools,
            config=services.config,
            prompt=research_prompt([t.name for t in tools]),
            context_window=services.context_window,
        ),
    )
    graph = build_graph(checkpointer=False)
    prompt = f"{task}\n\nAlready known:\n{context}" if context else task
    state: dict[str, Any] = {}
    async for mode, chunk in graph.astream(
        new_turn(prompt),
        {"recursion_limit": 5 * sub.max_iterations + 10},
        context=sub,
        stream_mode=["custom", "values"],
        durability="exit",
    ):
        if mode == "values":
            state = chunk
        elif chunk.get("type") == "tool_call":
            emit(
                {
                    "type": "tool_log",
                    "tool": "research",
                    "text": f"→ {chunk['tool']} {json.dumps(chunk['args'])[:150]}",
                }
            )
    return _answer(state)


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
