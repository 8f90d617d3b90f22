"""Custom tools as a user or a plugin would write them (tests/test_custom_tools.py)."""
