"""Approval of the tools no family declares (MCP and custom tools), by config and by what the tool says.

The setting of a call comes from, first match wins: the config's `tool_approval[<offered name>]`; for an MCP
tool, its server's `tool_approval[<tool>]` (the server's own name for it, or the offered one) and then the
server's `approval`; else "never" for a tool that declares itself read-only and "ask" for any other.
A tool declares itself read-only with `metadata={"read_only": True}` (tools/custom.py); an MCP tool does so
with the MCP annotation `readOnlyHint: true` (tools/mcp/servers.py copies it into the same key).
Every tool ml-intern loads is either declared by its family or marked where it is loaded (`mcp_server`,
`custom_tool`); a tool handed to `Services` directly by code is not gated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml_intern.configs.schema import AgentConfig, ApprovalSetting

READ_ONLY = "read_only"  # the metadata key a tool declares itself read-only with
CUSTOM = "custom_tool"  # the metadata key tools/custom.py marks the tools it loads with (their origin)


def tool_metadata(tool: Any) -> Mapping[str, Any]:
    """The LangChain tool's metadata (None and non-tools read as empty)."""
    metadata = getattr(tool, "metadata", None)
    return metadata if isinstance(metadata, Mapping) else {}


def approval_setting(name: str, metadata: Mapping[str, Any], config: AgentConfig) -> ApprovalSetting:
    """ask, never or always for calls of the undeclared tool `name`."""
    if name in config.tool_approval:
        return config.tool_approval[name]
    server = config.mcpServers.get(str(metadata.get("mcp_server")))
    if server is not None:
        for key in (metadata.get("mcp_tool"), name):
            if key in server.tool_approval:
                return server.tool_approval[key]
        if server.approval is not None:
            return server.approval
    return "never" if metadata.get(READ_ONLY) is True else "ask"


def describe(name: str, metadata: Mapping[str, Any]) -> str:
    """How an approval card names the tool: MCP tool X of server S, or custom tool X."""
    if "mcp_server" in metadata:
        return f"MCP tool {metadata.get('mcp_tool') or name} of server {metadata['mcp_server']}"
    return f"custom tool {name}"


def undeclared_need(name: str, tool: Any, config: AgentConfig) -> tuple[str, bool] | None:
    """(reason, always_ask) when a call of the undeclared tool needs approval, else None."""
    metadata = tool_metadata(tool)
    if tool is not None and CUSTOM not in metadata and "mcp_server" not in metadata:
        return None  # handed to Services by code (tests, an embedding program): its author answers for it
    setting = approval_setting(name, metadata, config)
    if setting == "never":
        return None
    what = describe(name, metadata)
    if setting == "always":
        return f"{what}: the config says every call is asked (approval: always)", True
    return f"{what}, which may change things (not declared read-only)", False
