"""Notifications: the `notify` tool (Slack, config `messaging`); what it is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts

TOOL_FACTS = {"notify": ToolFacts(effect="message", hidden=frozenset({"title"}))}
