"""The tool registry: which tool families a run offers, and which calls need a human's approval."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import UserError
from ml_intern.tools.base import ToolEnv

# Tool family modules under ml_intern.tools, in the order their tools are offered to the model.
FAMILIES = (
    "local.plan",
    "research",
    "local.shell",
    "local.files",
    "hub.search",
    "datasets.tool",
    "hub.repo",
    "hub.repo_git",
    "web.papers",
    "web.docs",
    "web.search",
    "web.github",
    "jobs.tool",
)


class UnknownToolError(UserError):
    """`--tools` named a tool that does not exist."""


@dataclass(frozen=True)
class ApprovalNeed:
    """Why a call needs approval, and whether it may never be approved automatically."""

    reason: str
    always_ask: bool = False


def _family(name: str) -> Any:
    return importlib.import_module(f"ml_intern.tools.{name}")


def all_tools(env: ToolEnv) -> list[Any]:
    """Every built-in tool, in family order, then the custom tools (config "tools" and plugins)."""
    from ml_intern.tools.custom import custom_tools

    builtin = [tool for name in FAMILIES for tool in _family(name).make_tools(env)]
    return builtin + custom_tools(env, {tool.name for tool in builtin})


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


@cache
def _approval_rules() -> dict[str, Callable[[dict, dict], str | None]]:
    rules: dict[str, Callable[[dict, dict], str | None]] = {}
    for name in FAMILIES:
        rules.update(getattr(_family(name), "APPROVAL", {}))
    return rules


def approval_need(name: str, args: dict[str, Any], config: AgentConfig) -> ApprovalNeed | None:
    """Whether the call `name(args)` needs a human's approval under `config`."""
    rule = _approval_rules().get(name)
    reason = rule(args, config) if rule else None
    if reason is None:
        return None
    always_ask = name == "hf_jobs" and _family("jobs.tool").is_scheduled_operation(args)
    return ApprovalNeed(reason=reason, always_ask=always_ask)
