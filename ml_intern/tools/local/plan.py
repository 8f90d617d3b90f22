"""The `plan_tool`: the agent's todo list, kept in the transcript (the latest call is the current plan)."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel

from ml_intern.graph import events
from ml_intern.tools.base import ToolEnv, ToolError, emit

DESCRIPTION = (
    "Set the todo list of a multi-step task (replaces it). One item in_progress; mark items completed when "
    "done."
)
MARKS = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


class Todo(BaseModel):
    id: str
    content: str
    status: Literal["pending", "in_progress", "completed"]


class PlanArgs(BaseModel):
    todos: list[Todo]


def render(todos: list[dict[str, Any]]) -> str:
    """The plan as a markdown checklist (what the model reads and the terminal shows)."""
    if not todos:
        return "Plan cleared."
    done = sum(t["status"] == "completed" for t in todos)
    lines = [f"Plan ({done}/{len(todos)} done):"]
    lines += [f"- {MARKS[t['status']]} {t['content']}" for t in todos]
    return "\n".join(lines)


def current_plan(messages: list[AnyMessage]) -> list[dict[str, Any]]:
    """The todos of the latest successful plan_tool call in the transcript (empty when there is none)."""
    failed = {m.tool_call_id for m in messages if isinstance(m, ToolMessage) and m.status == "error"}
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            for call in reversed(message.tool_calls):
                todos = call["args"].get("todos")
                if call["name"] == "plan_tool" and call["id"] not in failed and isinstance(todos, list):
                    return [t for t in todos if isinstance(t, dict)]
    return []


def unfinished(todos: list[dict[str, Any]]) -> list[str]:
    return [str(t.get("content", "")) for t in todos if t.get("status") != "completed"]


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The plan tool (it has no environment to use: the plan lives in the transcript)."""

    async def plan_tool(todos: list[Todo]) -> str:
        items = [t.model_dump() if isinstance(t, Todo) else dict(t) for t in todos]
        if sum(t["status"] == "in_progress" for t in items) > 1:
            raise ToolError("Keep at most one item in_progress; finish it before starting the next.")
        emit(events.plan_update(items))
        return render(items)

    return [
        StructuredTool.from_function(
            coroutine=plan_tool, name="plan_tool", description=DESCRIPTION, args_schema=PlanArgs
        )
    ]
