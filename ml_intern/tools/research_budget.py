"""The research sub-agent's context budget, its wrap-up warning and the forced summary when it stops."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.tools import BaseTool, StructuredTool

from ml_intern.configs.schema import AgentConfig
from ml_intern.graph import events
from ml_intern.graph.context import RunContext
from ml_intern.graph.state import add_usage
from ml_intern.tools.base import ToolError, clip, emit

TOOL_OUTPUT_CHARS = 8_000  # each tool answer inside the sub-agent (the main agent's limit is 25,000)
CONTEXT_BUDGET = 190_000  # tokens, or 90% of the model's window when that is smaller
WINDOW_SHARE = 0.9  # leaves room in the window for the forced summary request
WARN_SHARE = 0.75
WARNING = "\n\n[SYSTEM: You have used 75% of your context budget. Start wrapping up: finish the recipe soon.]"
SUMMARY = (
    "[SYSTEM: {reason}. Do not call tools. Write your final answer now from what you found: the recipe "
    "table, code patterns and recommendations, with sources.]"
)


@dataclass
class ContextBudget:
    """The sub-agent's context size so far (its latest call plus what came after) against its limit."""

    limit: int = CONTEXT_BUDGET
    tokens: int = 0
    warned: bool = False

    def fit(self, window: int | None) -> None:
        """Limit to min(190k, 90% of the model's window); 190k when the window is unknown."""
        self.limit = min(CONTEXT_BUDGET, int(window * WINDOW_SHARE)) if window else CONTEXT_BUDGET

    @property
    def exhausted(self) -> bool:
        return self.tokens >= self.limit

    def measure(self, state: dict[str, Any]) -> bool:
        """Record the size of the sub-agent's next prompt from a state snapshot; True once over the limit."""
        from ml_intern.nodes.compact import context_size

        self.tokens = context_size(state)
        return self.exhausted

    def annotate(self, text: str) -> str:
        """A tool answer, cut to TOOL_OUTPUT_CHARS, carrying the wrap-up warning once past WARN_SHARE."""
        text = clip(text, TOOL_OUTPUT_CHARS)
        if self.warned or self.tokens < WARN_SHARE * self.limit:
            return text
        self.warned = True
        return text + WARNING


def without_compaction(config: AgentConfig) -> AgentConfig:
    """`config` for the sub-agent: compaction only at its full window (the original never compacted it);
    the budget stops it at 90% of the window first."""
    compaction = config.compaction.model_copy(update={"threshold_tokens": 10**12, "window_fraction": 1.0})
    return config.model_copy(update={"compaction": compaction})


def for_sub_agent(tool: BaseTool, budget: ContextBudget) -> BaseTool:
    """`tool` as the sub-agent sees it: same name and schema, shorter answers, the budget warning."""

    async def run(**args: Any) -> str:
        output = await tool.ainvoke(args)
        return budget.annotate(output if isinstance(output, str) else str(output))

    return StructuredTool(
        name=tool.name, description=tool.description, args_schema=tool.args_schema, coroutine=run
    )


async def final_answer(
    sub: RunContext, state: dict[str, Any], budget: ContextBudget
) -> tuple[str, dict[str, Any]]:
    """The sub-agent's final reply; when it stopped without one, a forced summary call without tools."""
    usage = state.get("usage") or {}
    messages = list(state.get("messages", []))
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
    """One call without tools asking for the answer from what the transcript holds."""
    from ml_intern.graph.accounting import call_event, call_usage
    from ml_intern.nodes.call_model import model_prompt

    messages = list(state.get("messages", []))
    if messages and messages[-1].type == "ai" and messages[-1].tool_calls:  # cut off before its tools ran
        messages.pop()
    services = sub.services
    prompt = [
        *model_prompt({**state, "messages": messages}, services),
        HumanMessage(SUMMARY.format(reason=reason)),
    ]
    started = time.monotonic()
    try:
        reply = await services.chat_model.ainvoke(prompt)
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"[:300]  # execute_tools redacts what reaches the model
        raise ToolError(f"the research sub-agent's summary call failed: {detail}") from None
    model = services.model.litellm_model
    usage = call_usage(reply, model)
    emit(call_event(reply, usage, model, "research", started))
    if not reply.text.strip():
        raise ToolError(f"the research sub-agent ended without an answer ({reason.lower()})")
    return reply.text, usage
