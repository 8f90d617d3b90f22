"""The run context: settings a run is started with, and the services (model, tools) built from them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.services import Services, build_services


@dataclass
class RunContext:
    """Per-run settings: plain fields, so LangGraph Studio can send them as JSON; `services` is lazy."""

    model: str = ""  # litellm model id; empty: picked from config and credentials
    workdir: str = ""  # the user's working directory; empty: the process's current directory
    approval: str = "ask"  # ask | auto | deny: what happens to calls that need approval
    max_iterations: int = 300  # model calls allowed per turn
    tools: list[str] | None = None  # offer only these tool names (None: all)
    max_cost_usd: float | None = None  # per-turn cost budget in USD (None: config `max_cost_usd`)
    max_tokens: int | None = None  # per-turn budget of input + output tokens (None: config `max_tokens`)
    stream: bool = True  # stream model output token by token
    services: Services | None = field(
        default=None, repr=False
    )  # built objects; tests and the CLI inject them


_built: dict[tuple, Services] = {}


def services_of(ctx: RunContext | None) -> Services:
    """The services for `ctx`, built once per distinct setting when not injected (LangGraph Studio path)."""
    ctx = ctx or RunContext()
    if ctx.services is not None:
        return ctx.services
    key = (ctx.model, ctx.workdir, tuple(ctx.tools or ()), ctx.stream)
    if key not in _built:
        _built[key] = build_services(
            model=ctx.model or None,
            workdir=Path(ctx.workdir or os.getcwd()),
            tool_names=ctx.tools,
            stream=ctx.stream,
            environ=dict(os.environ),
            config=None,
        )
    return _built[key]
