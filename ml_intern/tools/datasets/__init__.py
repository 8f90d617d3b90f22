"""Datasets: the `hf_inspect_dataset` tool; what it is, for the registry."""

from __future__ import annotations

from ml_intern.tools.base import ToolFacts

TOOL_FACTS = {"hf_inspect_dataset": ToolFacts(effect="nothing")}
