"""Approval and cost of the sandbox tools (the registry reads them through the facts in `__init__`)."""

from __future__ import annotations

from typing import Any

from ml_intern.tools.base import ToolEnv
from ml_intern.tools.jobs.prices import hourly_prices
from ml_intern.tools.sandbox.spaces import FREE_HARDWARE


def hardware_of(args: dict[str, Any]) -> str:
    """The hardware a sandbox_create call asks for (cpu-basic when it names none)."""
    return str(args.get("hardware") or FREE_HARDWARE).strip()


def bash_needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """A sandbox command: asked only when it matches a `bash.approval_patterns` regex (the sandbox is remote
    and disposable: nothing else it runs reaches the user's machine)."""
    command = str(args.get("command", ""))
    if env.config.bash.matched_approval_pattern(command) is None:
        return None
    return f"sandbox command that may be destructive: {command[:200]}"


def create_needs_approval(args: dict[str, Any], env: ToolEnv) -> str | None:
    """Hardware other than the free cpu-basic: asked, with its hourly price and the most it may cost (it is
    deleted after config sandbox.max_hours)."""
    hardware = hardware_of(args)
    if hardware == FREE_HARDWARE:
        return None
    prices, from_hub = hourly_prices(env)
    price, hours = prices.get(hardware), env.config.sandbox.max_hours
    source = "Hub prices" if from_hub else "list prices"
    if price is None:
        cost = f"price unknown, at most {hours:g} h"
    else:
        cost = f"${price:.2f}/h ({source}), at most {hours:g} h: ≤ ${price * hours:.2f}"
    return f"sandbox on {hardware}: {cost}; billed while it runs, deleted at exit or after {hours:g} h"


def create_cost(args: dict[str, Any], env: ToolEnv) -> tuple[bool, float | None]:
    """(paid, the most it may cost: its hourly price × config sandbox.max_hours) for the yolo cap and the
    turn's budget."""
    hardware = hardware_of(args)
    if hardware == FREE_HARDWARE:
        return False, None
    price = hourly_prices(env)[0].get(hardware)
    return True, None if price is None else price * env.config.sandbox.max_hours
