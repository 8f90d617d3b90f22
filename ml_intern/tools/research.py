"""The `research` tool: a sub-agent with its own context and read-only tools that returns a concise recipe."""

from __future__ import annotations

import asyncio
import json
import warnings
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.configs.prompt import research_prompt
from ml_intern.configs.schema import EFFORT_LEVELS
from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.routing import recursion_limit
from ml_intern.graph.state import add_usage
from ml_intern.graph.turns import new_turn
from ml_intern.tools.base import ToolEnv, ToolError, ToolFacts, clip, emit
from ml_intern.tools.registry import read_only_tools

# The sub-agent keeps no checkpoints; LangGraph warns that the parent's durability setting does nothing.
warnings.filterwarnings("ignore", message="`durability` has no effect")

DESCRIPTION = (
    "A sub-agent researches with read-only tools (papers, docs, Hub, GitHub, web) and returns a recipe with "
    "sources. Use before training code; run several at once."
)
TOOL_OUTPUT_CHARS = 8_000  # each tool answer inside the sub-agent (the main agent's limit is 25,000)
CONTEXT_BUDGET = 190_000  # tokens, or the model's window when smaller
WARN_SHARE = 0.75
WARNING = "\n\n[SYSTEM: You have used 75% of your context budget. Start wrapping up: finish the recipe soon.]"
SUMMARY = (
    "[SYSTEM: {reason}. Do not call tools. Write your final answer now from what you found: the recipe "
    "table, code patterns and recommendations, with sources.]"
)


class ResearchArgs(BaseModel):
    task: str = Field(description="question, constraints")
    context: str = Field("", description="What is known")


@dataclass
class ContextBudget:
    """The sub-agent's context size so far (tokens of its latest call) against its limit."""

    limit: int = CONTEXT_BUDGET
    tokens: int = 0
    warned: bool = False

    @property
    def exhausted(self) -> bool:
        return self.tokens >= self.limit

    def annotate(self, text: str) -> str:
        """A tool answer, cut to TOOL_OUTPUT_CHARS, carrying the wrap-up warning once past WARN_SHARE."""
        text = clip(text, TOOL_OUTPUT_CHARS)
        if self.warned or self.tokens < WARN_SHARE * self.limit:
            return text
        self.warned = True
        return text + WARNING


def for_sub_agent(tool: BaseTool, budget: ContextBudget) -> BaseTool:
    """`tool` as the sub-agent sees it: same name and schema, shorter answers, the budget warning."""

    async def run(**args: Any) -> str:
        output = await tool.ainvoke(args)
        return budget.annotate(output if isinstance(output, str) else str(output))

    return StructuredTool(
        name=tool.name, description=tool.description, args_schema=tool.args_schema, coroutine=run
    )


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
    budget.limit = min(
        CONTEXT_BUDGET, await asyncio.to_thread(lambda: sub.services.context_window) or CONTEXT_BUDGET
    )
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
                state, budget.tokens = chunk, chunk.get("context_tokens") or budget.tokens
                if budget.exhausted:
                    break
            elif chunk.get("type") == "tool_call":
                args = json.dumps(chunk["args"])[:80]
                emit(events.tool_log("research", f"▸ {chunk['tool']} {args} · {budget.tokens:,} tokens"))
            elif chunk.get("type") == "llm_call":
                emit({**chunk, "kind": "research"})
    return await _answer(sub, state, budget)


def sub_agent_context(parent: RunContext, tools: list[BaseTool], prompt: str) -> RunContext:
    """The sub-agent's run: `research.model` (else the parent's), `tools`, `prompt`, no human to ask."""
    services = parent.services
    changes: dict[str, Any] = {"tools": tools, "prompt": prompt, "mcp": None, "warnings": []}
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


async def _answer(
    sub: RunContext, state: dict[str, Any], budget: ContextBudget
) -> tuple[str, dict[str, Any]]:
    """The sub-agent's final reply; when it stopped without one, a forced summary call without tools."""
    messages = list(state.get("messages", []))
    usage = state.get("usage") or {}
    last = messages[-1] if messages else None
    if last is not None and last.type == "ai" and not last.tool_calls and last.text.strip():
        return last.text, {"usage": usage, "label": "research"}
    if state.get("stop_reason") == "budget":  # the user's cost or token budget: no call beyond it
        raise ToolError("the research sub-agent stopped at the turn's budget before answering")
    reason = "CONTEXT LIMIT REACHED" if budget.exhausted else "ITERATION LIMIT REACHED"
    emit(events.tool_log("research", f"{reason.lower()}: asking for a summary"))
    text, summary_usage = await _summarise(sub, state, reason)
    return text, {"usage": add_usage(usage, summary_usage), "label": "research"}


async def _summarise(sub: RunContext, state: dict[str, Any], reason: str) -> tuple[str, dict[str, Any]]:
    from ml_intern.graph.accounting import call_usage
    from ml_intern.nodes.call_model import model_prompt

    messages = list(state.get("messages", []))
    if messages and messages[-1].type == "ai" and messages[-1].tool_calls:  # cut off before its tools ran
        messages.pop()
    services = sub.services
    prompt = [
        *model_prompt({**state, "messages": messages}, services),
        HumanMessage(SUMMARY.format(reason=reason)),
    ]
    try:
        reply = await services.chat_model.ainvoke(prompt)
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"[:300]  # execute_tools redacts what reaches the model
        raise ToolError(f"the research sub-agent's summary call failed: {detail}") from None
    if not reply.text.strip():
        raise ToolError(f"the research sub-agent ended without an answer ({reason.lower()})")
    return reply.text, call_usage(reply, services.model.litellm_model)


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
