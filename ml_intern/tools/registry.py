"""The tool registry: which tool families a run offers, and what their tools are (the facts each family
declares next to its tools: approval rule, read-only operations, what a call changes)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from ml_intern.errors import UserError
from ml_intern.tools.base import Effect, Runtime, ToolEnv, ToolFacts
from ml_intern.tools.checked import CheckedTool, renamed
from ml_intern.tools.undeclared import undeclared_need

# Tool family modules under ml_intern.tools, in the order their tools are offered to the model.
FAMILIES = (
    "local.plan",
    "local.teachings",
    "research",
    "local.shell",
    "local.files",
    "sandbox.tools",
    "hub.search",
    "datasets.tool",
    "hub.repo",
    "hub.repo_git",
    "web.papers",
    "web.docs",
    "web.hf_api",
    "web.search",
    "web.github",
    "jobs.tool",
    "notify.tool",
)


class UnknownToolError(UserError):
    """`--tools` named a tool that does not exist."""


@dataclass(frozen=True)
class ApprovalNeed:
    """Why a call needs approval, and whether it may never be approved automatically."""

    reason: str
    always_ask: bool = False
    paid: bool = False  # the call costs money (an HF job): yolo approves it only within its cap
    cost_usd: float | None = None  # its estimated maximum; None: unknown


def _family(name: str) -> Any:
    return importlib.import_module(f"ml_intern.tools.{name}")


def all_tools(env: ToolEnv) -> list[Any]:
    """Every built-in tool, in family order (its arguments checked, tools/checked.py), then the custom tools
    (config "tools" and plugins)."""
    from ml_intern.tools.custom import custom_tools

    builtin = [offered(tool, env.runtime) for name in FAMILIES for tool in _family(name).make_tools(env)]
    return builtin + custom_tools(env, {tool.name for tool in builtin})


def offered(tool: Any, runtime: Runtime = "local") -> CheckedTool:
    """A built-in tool as the model gets it: the original's argument names taken, unknown ones rejected,
    hidden ones kept out of its schema (as its family declares; tools/checked.py)."""
    return CheckedTool.wrap(tool, tool_facts(tool.name, runtime))


def select_tools(tools: list[Any], only: list[str] | None, mcp_configured: bool = False) -> list[Any]:
    """`tools`, or those named in `only`; unknown names may be MCP tools when servers are configured."""
    if only is None:
        return tools
    known = {tool.name for tool in tools}
    unknown = [name for name in only if name not in known]
    if unknown and not mcp_configured:
        raise UnknownToolError(f"unknown tool(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")
    return [tool for tool in tools if tool.name in only]


def build_tools(env: ToolEnv, only: list[str] | None = None) -> list[Any]:
    """Every tool of every family plus custom tools, or just those named in `only` (in the family order)."""
    return select_tools(all_tools(env), only, bool(env.config.mcpServers))


# MCP and custom tools declare no facts: effect unknown, never read-only for undo and the research
# sub-agent; their approval follows the config and their own read-only declaration (tools/undeclared.py).
UNDECLARED = ToolFacts(effect="unknown")


@cache
def declared_facts() -> dict[str, ToolFacts]:
    """Tool name -> facts, from each family's `TOOL_FACTS` (its package `__init__`, or its module)."""
    facts: dict[str, ToolFacts] = {}
    for source in dict.fromkeys(name.split(".")[0] for name in FAMILIES):
        facts.update(_family(source).TOOL_FACTS)
    return facts


@cache
def sandbox_facts() -> dict[str, ToolFacts]:
    """Tool name -> facts of the tools that run in the sandbox under the same names as the local ones."""
    return importlib.import_module("ml_intern.tools.sandbox").SANDBOX_FACTS


def tool_facts(name: str, runtime: Runtime = "local") -> ToolFacts:
    """What the tool `name` is in a run of `runtime`: its family's declaration, or UNDECLARED."""
    if runtime == "sandbox" and name in sandbox_facts():
        return sandbox_facts()[name]
    return declared_facts().get(name, UNDECLARED)


def read_only_tools(tools: list[Any]) -> list[Any]:
    """The tools of `tools` that change nothing, whatever the call."""
    return [tool for tool in tools if tool_facts(tool.name).read_only]


def call_effect(name: str, args: dict[str, Any], runtime: Runtime = "local") -> Effect:
    """What the call `name(args)` changes in a run of `runtime`."""
    facts = tool_facts(name, runtime)
    return facts.effect_of(renamed(args, facts))


def approval_need(name: str, args: dict[str, Any], env: ToolEnv, tool: Any = None) -> ApprovalNeed | None:
    """Whether the call `name(args)` needs a human's approval in the run `env`: by its family's rule, or
    for an MCP or custom tool (`tool`, the offered tool object) by the config and its declarations."""
    facts = tool_facts(name, env.runtime)
    if facts is UNDECLARED:
        need = undeclared_need(name, tool, env.config)
        return ApprovalNeed(reason=need[0], always_ask=need[1]) if need else None
    if isinstance(tool, CheckedTool) and tool.rejects(args):
        return None  # answered with the arguments it takes, nothing runs: no human needs to be asked
    args = renamed(args, facts)  # the rules read our argument names, whichever the model wrote
    try:
        reason = facts.approval(args, env) if facts.approval else None
    except Exception as exc:  # malformed arguments: ask rather than crash the turn or let the call through
        reason = f"{name} with arguments its approval rule cannot read ({type(exc).__name__}: {exc})"
    if reason is None:
        return None
    paid, cost = paid_cost(facts, args, env)
    always_ask = bool(facts.always_ask and facts.always_ask(args))
    return ApprovalNeed(reason=reason, always_ask=always_ask, paid=paid, cost_usd=cost)


def paid_cost(facts: ToolFacts, args: dict[str, Any], env: ToolEnv) -> tuple[bool, float | None]:
    """Whether the call costs money and its estimate; arguments the estimate cannot read: paid, unknown."""
    if facts.cost is None:
        return False, None
    try:
        return facts.cost(args, env)
    except Exception:
        return True, None
