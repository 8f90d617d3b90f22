"""execute_tools: run the approved calls concurrently; every call gets exactly one answer, in call order."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import ToolMessage
from langgraph.runtime import Runtime
from pydantic import ValidationError

from ml_intern.graph.accounting import labelled
from ml_intern.graph.context import RunContext, services_of
from ml_intern.graph.events import emit
from ml_intern.graph.messages import pending_calls, tool_result
from ml_intern.graph.state import AgentState, add_usage
from ml_intern.secrets import redact
from ml_intern.tools.base import ToolError, clip


def rejection_text(feedback: str) -> str:
    """What the model reads when a human (or the policy) rejects a call."""
    text = "The user rejected this tool call; it was not executed."
    return f"{text} Their feedback: {feedback}" if feedback else f"{text} Ask them or try something else."


async def run_call(call: dict[str, Any], tools: dict[str, Any]) -> ToolMessage:
    """Run one call; failures of any kind become an error message to the model."""
    tool = tools.get(call["name"])
    if tool is None:
        names = ", ".join(sorted(tools))
        return tool_result(call, f"Error: unknown tool '{call['name']}'. Available tools: {names}.", "error")
    emit({"type": "tool_call", "id": call["id"], "tool": call["name"], "args": call["args"]})
    artifact = None
    try:
        output = await tool.ainvoke({**call, "type": "tool_call"})
        artifact = getattr(output, "artifact", None)
        content = output.content if isinstance(output, ToolMessage) else output
        text, status = clip(content if isinstance(content, str) else str(content)), "success"
    except ToolError as exc:
        text, status = f"Error: {exc}", "error"
    except ValidationError as exc:
        text, status = f"Error: invalid arguments for {call['name']}: {_short_errors(exc)}", "error"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a tool bug must not end the run: the model reads it and adapts
        text, status = f"Error: {call['name']} failed: {type(exc).__name__}: {exc}", "error"
    text = redact(clip(text))
    emit(
        {
            "type": "tool_output",
            "id": call["id"],
            "tool": call["name"],
            "output": text,
            "success": status == "success",
        }
    )
    result = tool_result(call, text, status)
    result.artifact = artifact
    return result


def _short_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])


async def execute_tools(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Answer every pending call: rejected ones with the rejection, approved ones by running them."""
    services = services_of(runtime.context)
    await services.start()  # a resumed thread may reach here before any model call started MCP servers
    tools = services.tools_by_name
    approvals = state.get("approvals") or {}
    calls = pending_calls(state["messages"])

    async def answer(call: dict[str, Any]) -> ToolMessage:
        decision = approvals.get(call["id"], {"approved": True})
        if not decision["approved"]:
            emit({"type": "tool_state_change", "id": call["id"], "tool": call["name"], "state": "rejected"})
            return tool_result(call, rejection_text(decision.get("feedback", "")), "error")
        return await run_call(call, tools)

    results = await asyncio.gather(*(answer(call) for call in calls))
    update: dict[str, Any] = {"messages": list(results), "approvals": {}}
    usage = sub_agent_usage(results)
    return {**update, "usage": usage} if usage else update


def sub_agent_usage(results: list[ToolMessage]) -> dict[str, Any]:
    """Model usage that tools (the research sub-agent) report in their artifacts, also counted by label."""
    total: dict[str, Any] = {}
    for result in results:
        artifact = result.artifact if isinstance(result.artifact, dict) else {}
        usage, label = artifact.get("usage"), artifact.get("label", "tools")
        if usage:
            total = add_usage(total, labelled(usage, label))
    return total
