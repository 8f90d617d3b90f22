"""The `teachings` tool: the ML-workflow guides (configs/teachings/*.md), read when the task needs one, so the
system prompt carries only their index."""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.configs.prompt import teaching_index, teachings
from ml_intern.tools.base import ToolEnv, ToolError

DESCRIPTION = "Read a guide on ML work by topic (topics listed in the system prompt)."


class TeachingsArgs(BaseModel):
    topic: str = Field(description="e.g. oom")


def read_teaching(topic: str) -> str:
    """The guide on `topic`; an unknown topic is a ToolError listing the topics (the model picks again)."""
    key = topic.strip().lower().removesuffix(".md").replace("-", "_").replace(" ", "_")
    found = teachings().get(key)
    if found is None:
        raise ToolError(f"No teaching {topic[:80]!r}. Topics: {teaching_index()}.")
    return found


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The teachings tool (read-only; the guides are package data)."""

    async def teachings_tool(topic: str) -> str:
        return read_teaching(topic)

    return [
        StructuredTool.from_function(
            coroutine=teachings_tool, name="teachings", description=DESCRIPTION, args_schema=TeachingsArgs
        )
    ]
