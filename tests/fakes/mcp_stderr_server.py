"""A real stdio MCP server (FastMCP) that leaks: `complain` writes its text to stderr a few bytes at a time
(so pipe reads cut it anywhere), `dump` returns its text repeated (a result over the size cap).

    python tests/fakes/mcp_stderr_server.py
"""

from __future__ import annotations

import os
import sys

from mcp.server.fastmcp import FastMCP


def build_server() -> FastMCP:
    server = FastMCP("leaky")

    @server.tool()
    def complain(text: str) -> str:
        """Write `text` to stderr in pieces of 7 bytes."""
        data = text.encode()
        for at in range(0, len(data), 7):
            os.write(sys.stderr.fileno(), data[at : at + 7])
        return "complained"

    @server.tool()
    def dump(text: str, times: int = 1) -> str:
        """Return `text` repeated `times` times."""
        return text * times

    return server


if __name__ == "__main__":
    build_server().run("stdio")
