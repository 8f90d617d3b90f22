"""An installable plugin's module: ml-intern calls its make_tools(env), like its own tool families."""

from __future__ import annotations

from ml_intern.tools.base import ToolEnv


def make_tools(env: ToolEnv) -> list[object]:
    """The plugin's tools."""

    async def plugin_greeting(name: str) -> str:
        """Greet `name` from the plugin."""
        return f"hello {name} from the plugin"

    return [plugin_greeting]
