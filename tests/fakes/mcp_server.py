"""A real MCP server (FastMCP) for the MCP tests: text, image, failing and introspection tools.

    python tests/fakes/mcp_server.py --starts FILE                  # stdio (what ml-intern spawns)
    python tests/fakes/mcp_server.py --transport streamable-http --port 8931 --starts FILE

Every start appends this process's pid to `--starts`, so tests can count starts and kill the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mcp.server.fastmcp import Context, FastMCP, Image

STDERR_BANNER = "fake-mcp: starting (this line belongs in the server's log file)"
# 1x1 transparent PNG
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def build_server(port: int = 8000) -> FastMCP:
    """The FastMCP server with the test tools."""
    server = FastMCP("fake", port=port)

    @server.tool()
    def shout(text: str, times: int = 1) -> str:
        """Return `text` in capitals, repeated `times` times."""
        return text.upper() * times

    @server.tool()
    def picture() -> list:
        """Return a caption and a one-pixel PNG."""
        return ["a tiny picture", Image(data=PIXEL_PNG, format="png")]

    @server.tool()
    def explode(message: str) -> str:
        """Always fail with `message`."""
        raise ValueError(message)

    @server.tool()
    def environment() -> str:
        """The names of the server's environment variables, one per line."""
        return "\n".join(sorted(os.environ))

    @server.tool()
    def read(path: str) -> str:
        """A tool whose name collides with ml-intern's built-in `read`."""
        return f"fake read of {path}"

    @server.tool()
    def request_headers(ctx: Context) -> str:
        """The HTTP headers of the current request (http transports only), as `name: value` lines."""
        request = ctx.request_context.request
        headers = request.headers if request is not None else {}
        return "\n".join(f"{name}: {value}" for name, value in sorted(headers.items()))

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=Path, required=True)
    parser.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http", "sse"])
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    with options.starts.open("a") as starts:
        starts.write(f"{os.getpid()}\n")
    print(STDERR_BANNER, file=sys.stderr, flush=True)
    build_server(options.port).run(options.transport)


if __name__ == "__main__":
    main()
