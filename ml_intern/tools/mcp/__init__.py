"""MCP server tools. Their names are known only once the servers start, so the family declares no facts:
the registry treats them as undeclared (no approval rule, never read-only, effect unknown)."""
