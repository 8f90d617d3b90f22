"""A real MCP server (FastMCP, stdio) with file tools, for the approval tests: `remove_tree` deletes a
directory wherever it is (as a careless server would), `list_dir` is annotated read-only.

    python tests/fakes/mcp_files_server.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations


def build_server() -> FastMCP:
    """The FastMCP server with the file tools."""
    server = FastMCP("files")

    @server.tool(annotations=ToolAnnotations(destructiveHint=True))
    def remove_tree(path: str) -> str:
        """Delete the directory `path` and everything under it."""
        shutil.rmtree(path)
        return f"removed {path}"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def list_dir(path: str) -> str:
        """The names in the directory `path`, one per line."""
        return "\n".join(sorted(child.name for child in Path(path).iterdir()))

    @server.tool()
    def make_dir(path: str) -> str:
        """Create the directory `path`."""
        Path(path).mkdir(parents=True, exist_ok=True)
        return f"made {path}"

    return server


if __name__ == "__main__":
    build_server().run("stdio")
