"""One line of the fault bench's report (bench/faults.py), shared by the scenario modules beside it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    """One line of the report: what was tried, what should happen, what did, and whether it held."""

    fault: str
    expected: str
    observed: str
    ok: bool
    category: str = ""  # boundary escapes, undo attribution, secrets on disk, concurrency, hangs, bad input
