"""An `mcpServers` entry, in the shape of the original ml-intern's (fastmcp) config."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import ConfigDict, Field, field_validator, model_validator

from ml_intern.configs.fields import Float, Section

TRANSPORT_SYNONYMS = {"streamable_http": "http", "streamable-http": "http"}
HF_SERVER = "hf-mcp-server"  # the original's default server (packaged config): used only with an HF token

# Keys of an original ml-intern server entry that we ignore with a warning (its configs must load unchanged).
ORIGINAL_MCP_SERVER_KEYS = {
    *("icon", "authentication", "auth", "sse_read_timeout", "tools", "include_tags", "exclude_tags"),
}


class McpServer(Section):
    """One MCP server, in the shape of the original ml-intern's (fastmcp) `mcpServers` entries."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # e.g. "env": {"PORT": 8080}

    transport: Literal["stdio", "http", "sse"]  # "streamable_http"/"streamable-http" read as "http"
    command: str | None = None  # stdio: the program to start
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    url: str | None = None  # http / sse: the endpoint
    headers: dict[str, str] = {}
    timeout: Float = Field(30, gt=0)  # start-up seconds
    enabled: bool = True  # false: not started (as a null entry); e.g. {"hf-mcp-server": {"enabled": false}}
    description: str | None = None
    approval: Literal["ask", "never", "always"] | None = None  # every tool of the server; None: ask unless
    # the tool declares itself read-only
    tool_approval: dict[str, Literal["ask", "never", "always"]] = {}  # per tool of this server

    @model_validator(mode="before")
    @classmethod
    def infer_transport(cls, data: Any) -> Any:
        """Accept `type` for `transport`, map synonyms, and infer it from `command`/`url` when absent."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        alias = data.pop("type", None)
        transport = data.get("transport", alias)
        if transport is None and data.get("command") is not None:
            transport = "stdio"
        elif transport is None and isinstance(data.get("url"), str):
            transport = "sse" if re.search(r"/sse(/|$)", urlparse(data["url"]).path) else "http"
        elif transport is None:
            raise ValueError('needs "command" (stdio server) or "url" (http or sse server)')
        data["transport"] = (
            TRANSPORT_SYNONYMS.get(transport, transport) if isinstance(transport, str) else transport
        )
        if isinstance(data.get("url"), str):  # `${HF_ENDPOINT}/mcp` with HF_ENDPOINT ending in "/"
            data["url"] = re.sub(r"^(https?://[^/?#]+)//+", r"\1/", data["url"])
        return data

    @field_validator("timeout")
    @classmethod
    def milliseconds_to_seconds(cls, value: float) -> float:
        """Read 1000 and above as milliseconds, the unit of the canonical MCP config format."""
        return value / 1000 if value >= 1000 else value

    @model_validator(mode="after")
    def check_endpoint(self) -> McpServer:
        """A stdio server needs a command; an http or sse server needs an http(s) url."""
        if self.transport == "stdio" and not self.command:
            raise ValueError('a stdio server needs "command"')
        if self.transport != "stdio" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError(f'an {self.transport} server needs an http(s) "url"')
        return self


def enabled_servers(servers: Any) -> Any:
    """`mcpServers` without the entries turned off (`null`, or `"enabled": false`)."""
    if not isinstance(servers, dict):
        return servers
    return {
        name: entry
        for name, entry in servers.items()
        if entry is not None and not (isinstance(entry, dict) and entry.get("enabled") is False)
    }


def without_unused_hf_server(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """`data` (a merged raw config) without the default HF MCP server when no HF token is known: it serves
    nothing without one (the token itself is added at connection time: tools/mcp/hf_auth.py)."""
    servers = data.get("mcpServers")
    if isinstance(servers, dict) and HF_SERVER in servers and not hf_token_known(env):
        data["mcpServers"] = {name: entry for name, entry in servers.items() if name != HF_SERVER}
    return data


def hf_token_known(env: Mapping[str, str]) -> bool:
    """Whether an HF token is set, or saved by `hf auth login` (huggingface_hub's token file)."""
    if env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    home = Path(env.get("HOME") or Path.home())
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
    hf_home = Path(env.get("HF_HOME") or cache / "huggingface")
    return Path(env.get("HF_TOKEN_PATH") or hf_home / "token").is_file()
