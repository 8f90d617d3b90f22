"""Tool families. Each module exposes `make_tools(env: ToolEnv) -> list[BaseTool]`; each family (its package
`__init__`, or its module) declares `TOOL_FACTS: dict[str, ToolFacts]`, which tools/registry.py collects."""
