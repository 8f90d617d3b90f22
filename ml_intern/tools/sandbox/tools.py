"""The sandbox runtime's tools: bash, read, write, edit (the local ones' names and arguments) and
sandbox_create. STUB: helper C."""

from __future__ import annotations

from typing import Any

from ml_intern.tools.base import ToolEnv


def make_tools(env: ToolEnv) -> list[Any]:
    """None in the local runtime."""
    if env.runtime != "sandbox":
        return []
    return []
