"""Tool families. Each module exposes `make_tools(env: ToolEnv) -> list[BaseTool]`."""
