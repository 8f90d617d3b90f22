"""execute_tools: run the approved calls concurrently; every call gets exactly one answer, in call order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.messages.tool import tool_call
from langgraph.runtime import Runtime
from pydantic import ValidationError

from ml_intern.graph import events
from ml_intern.graph.accounting import labelled
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import emit
from ml_intern.graph.messages import pending_calls, tool_result
from ml_intern.graph.state import AgentState, add_usage
from ml_intern.run_services import services_for
from ml_intern.secrets import redact, unredacted_args
from ml_intern.tools.base import Runtime as ToolRuntime
from ml_intern.tools.base import ToolError, clip
from ml_intern.tools.registry import approval_need, call_effect

LOCAL = ("local files", "unknown")  # call effects recorded in the undo journal


def rejection_text(feedback: str) -> str:
    """What the model reads when a human (or the policy) rejects a call."""
    text = "The user rejected this tool call; it was not executed."
    return f"{text} Their feedback: {feedback}" if feedback else f"{text} Ask them or try something else."


async def run_call(call: dict[str, Any], tools: dict[str, Any]) -> ToolMessage:
    """Run one call, announcing each state it passes; any failure becomes an error message to the model."""
    tool = tools.get(call["name"])
    emit(events.tool_call(call["id"], call["name"], call["args"]))
    if tool is None:
        emit(state_change(call, "failed"))
        names = ", ".join(sorted(tools))
        return tool_result(call, f"Error: unknown tool '{call['name']}'. Available tools: {names}.", "error")
    emit(state_change(call, "running"))
    try:
        text, status, artifact = await invoke(tool, call)
    except asyncio.CancelledError:
        emit(state_change(call, "cancelled"))
        raise
    text = redact(clip(text))
    emit(events.tool_output(call["id"], call["name"], text, status == "success"))
    emit(state_change(call, "completed" if status == "success" else "failed"))
    result = tool_result(call, text, status)
    result.artifact = artifact
    return result


async def invoke(tool: Any, call: dict[str, Any]) -> tuple[str, str, Any]:
    """The tool's answer to `call`: (text, status, artifact); a failure is an error text, not an exception."""
    try:
        output = await tool.ainvoke(tool_call(name=call["name"], args=call["args"], id=call["id"]))
    except ToolError as exc:
        return f"Error: {exc}", "error", None
    except ValidationError as exc:
        return f"Error: invalid arguments for {call['name']}: {_short_errors(exc)}", "error", None
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a tool bug must not end the run: the model reads it and adapts
        return f"Error: {call['name']} failed: {type(exc).__name__}: {exc}", "error", None
    content = output.content if isinstance(output, ToolMessage) else output
    text = content if isinstance(content, str) else str(content)
    return clip(text), "success", getattr(output, "artifact", None)


def state_change(call: dict[str, Any], state: events.CallState) -> events.Event:
    return events.tool_state_change(call["id"], call["name"], state)


def _short_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])


async def execute_tools(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Answer every pending call: rejected ones with the rejection, approved ones by running them."""
    services = await services_for(runtime.context)
    await services.start()  # a resumed thread may reach here before any model call started MCP servers
    tools = services.tools_by_name
    approvals = state.get("approvals") or {}
    # What runs, and what approval and the undo journal judge, is what the model wrote; the stored (redacted)
    # form is only what is saved and shown (events are redacted again when emitted).
    calls = [{**call, "args": unredacted_args(call)} for call in pending_calls(state["messages"])]

    async def answer(call: dict[str, Any]) -> ToolMessage:
        decision = approvals.get(call["id"])
        if decision is None and call["name"] in tools:
            # Defense in depth: a call that needs approval yet has no decision (an odd or resumed state, a
            # link swapped since approval_interrupt looked) is rejected, never run.
            need = await asyncio.to_thread(
                approval_need, call["name"], call["args"], services.env, tools[call["name"]]
            )
            if need is not None:
                decision = {"approved": False, "feedback": f"no approval was recorded ({need.reason})"}
        decision = decision or {"approved": True}
        if not decision["approved"]:
            emit(state_change(call, "rejected"))
            return tool_result(call, rejection_text(decision.get("feedback", "")), "error")
        if call["id"] in approvals:
            emit(state_change(call, "approved"))
        return await run_call(call, tools)

    journal = getattr(runtime.context, "journal", None)
    results = await answer_all(calls, answer, journal, services.env.runtime)  # __post_init__ always sets env
    update: dict[str, Any] = {"messages": list(results)}
    if approvals:
        update["approvals"] = {}  # spent: a later call reusing an id must be decided again
    usage = sub_agent_usage(results)
    return {**update, "usage": usage} if usage else update


async def answer_all(
    calls: list[dict[str, Any]],
    answer: Callable[[dict[str, Any]], Awaitable[ToolMessage]],
    journal: Any,
    tool_runtime: ToolRuntime,
) -> list[ToolMessage]:
    """Answer every call concurrently; those that may write local files run inside one journal record (the
    workdir scanned before and after them, for undo), the others beside it."""
    local = [i for i, c in enumerate(calls) if journal and local_effect(c, tool_runtime)]
    rest = [i for i in range(len(calls)) if i not in local]

    async def run(indices: list[int]) -> list[ToolMessage]:
        return list(await asyncio.gather(*(answer(calls[i]) for i in indices)))

    recorded = journal.record([calls[i] for i in local], lambda: run(local)) if local else run([])
    done_local, done_rest = await asyncio.gather(recorded, run(rest))
    answers = dict(zip(local + rest, done_local + done_rest, strict=True))
    return [answers[i] for i in range(len(calls))]


def local_effect(call: dict[str, Any], tool_runtime: ToolRuntime) -> bool:
    """Whether the call may change local files (undeclared tools, MCP and custom, may)."""
    return call_effect(call["name"], call.get("args") or {}, tool_runtime) in LOCAL


def sub_agent_usage(results: list[ToolMessage]) -> dict[str, Any]:
    """Model usage that tools (the research sub-agent) report in their artifacts, also counted by label."""
    total: dict[str, Any] = {}
    for result in results:
        artifact = result.artifact if isinstance(result.artifact, dict) else {}
        usage, label = artifact.get("usage"), artifact.get("label", "tools")
        if usage:
            total = add_usage(total, labelled(usage, label))
    return total
