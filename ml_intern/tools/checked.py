"""The arguments of built-in tools as the model meets them: the original ml-intern's names are accepted for
ours (aliases), arguments a family keeps out of the prompt are taken but not shown (hidden), and any other
argument is rejected with a message naming the ones the tool takes, instead of being dropped without a word.

The registry wraps every built-in tool in `CheckedTool`; MCP and custom tools keep their own validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from ml_intern.tools.base import ToolError, ToolFacts


def offered_schema(tool: BaseTool, hidden: frozenset[str]) -> Any:
    """The tool's argument schema without its hidden arguments and operation values (the prompt's copy)."""
    if not hidden:
        return tool.args_schema
    schema = convert_to_openai_tool(tool)["function"]["parameters"]
    properties = {name: spec for name, spec in schema.get("properties", {}).items() if name not in hidden}
    for spec in properties.values():
        if "enum" in spec:
            spec["enum"] = [value for value in spec["enum"] if value not in hidden]
    required = [name for name in schema.get("required", []) if name not in hidden]
    return {**schema, "properties": properties, **({"required": required} if required else {})}


def normal_args(
    name: str, args: Mapping[str, Any], facts: ToolFacts, accepted: set[str], shown: list[str]
) -> dict[str, Any]:
    """`args` with the family's aliases renamed to our names; an argument the tool does not take is a
    ToolError that says why when the family knows (`facts.unsupported`) and lists the arguments the prompt
    shows."""
    unknown = [key for key in args if facts.aliases.get(key, key) not in accepted]
    if unknown:
        names = ", ".join(repr(key) for key in unknown)
        reasons = dict.fromkeys(facts.unsupported[key] for key in unknown if key in facts.unsupported)
        why = f" ({'; '.join(reasons)})" if reasons else ""
        raise ToolError(f"{name} does not take {names}{why}; it takes: {', '.join(shown)}.")
    return renamed(args, facts)


def renamed(args: Mapping[str, Any], facts: ToolFacts) -> dict[str, Any]:
    """`args` with the family's aliases renamed to our names; our own name wins over an alias beside it."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        target = facts.aliases.get(key, key)
        if target not in out or key == target:
            out[target] = value
    return out


class CheckedTool(BaseTool):
    """A built-in tool as offered: its schema minus hidden arguments; each call's arguments are renamed and
    checked here, then validated and run by the tool itself."""

    inner: BaseTool
    facts: ToolFacts  # what the family declares: aliases, hidden and unsupported arguments
    accepted: set[str] = set()  # every argument the tool takes, hidden ones included
    shown: list[str] = []  # the arguments the prompt shows

    @classmethod
    def wrap(cls, tool: BaseTool, facts: ToolFacts) -> CheckedTool:
        """`tool` offered with the arguments `facts` declares."""
        declared = list(tool.args)
        return cls(
            inner=tool,
            name=tool.name,
            description=tool.description,
            args_schema=offered_schema(tool, facts.hidden),
            metadata=tool.metadata,
            facts=facts,
            accepted=set(declared),
            shown=[name for name in declared if name not in facts.hidden],
        )

    def _checked(self, tool_input: Any) -> Any:
        """The call with its arguments renamed; a ToolError for an argument the tool does not take."""
        if isinstance(tool_input, dict) and tool_input.get("type") == "tool_call":
            return {**tool_input, "args": self._normal(tool_input.get("args") or {})}
        return self._normal(tool_input) if isinstance(tool_input, dict) else tool_input

    def _normal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return normal_args(self.name, args, self.facts, self.accepted, self.shown)

    def rejects(self, args: Mapping[str, Any]) -> bool:
        """Whether a call with `args` is answered with the unknown-argument message (so runs nothing)."""
        return any(self.facts.aliases.get(key, key) not in self.accepted for key in args)

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:  # noqa: A002 - BaseTool's name
        return self.inner.invoke(self._checked(input), config, **kwargs)

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        return await self.inner.ainvoke(self._checked(input), config, **kwargs)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("CheckedTool runs its tool through invoke/ainvoke")
