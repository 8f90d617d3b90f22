"""The objects a run needs — chat model, tools, system prompt — built once from its settings."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ml_intern.configs.prompt import system_prompt
from ml_intern.configs.schema import AgentConfig, as_config
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import emit, notice
from ml_intern.model.credentials import adopt_saved_hf_token
from ml_intern.model.factory import make_chat_model, model_window
from ml_intern.model.ids import ModelSpec, pick_model, resolve_model
from ml_intern.paths import home_dir
from ml_intern.secrets import register_secrets
from ml_intern.tools.base import ToolEnv


@dataclass(frozen=True)
class McpPlan:
    """What a run needs to start its MCP servers later, inside the event loop (`Services.start`)."""

    servers: dict[str, dict[str, Any]]  # the config's `mcpServers`, validated
    home: Path  # ML_INTERN_HOME: server logs and spilled results go here
    workdir: str  # for the system prompt, rebuilt once the servers' tools are known
    reserved: frozenset[str]  # every built-in and custom tool name: MCP tools must not shadow them
    only: list[str] | None = None  # `--tools`: MCP tools (or servers) to offer; None: all


@dataclass
class Services:
    """What nodes use to do their work."""

    model: ModelSpec  # which model, and how to reach it
    # A LangChain chat model, tools not bound; None: a ChatLiteLLM built from `model` on first use, so
    # that building services does not import litellm (seconds). A property, set after the class below.
    chat_model: Any = field(repr=False, compare=False)
    tools: list[Any]  # LangChain tools offered to the model
    config: AgentConfig = field(default_factory=AgentConfig)  # the validated agent config
    prompt: str = ""  # the system prompt
    # The model's input window in tokens, when litellm knows it; None with a lazily built chat model: looked
    # up in litellm's table on first use. A property, set after the class below.
    context_window: int | None = field(default=None, repr=False, compare=False)
    stream: bool = True  # how the lazily built chat model calls the model
    mcp: McpPlan | None = None  # MCP servers to start before the first model call; None: none configured
    warnings: list[str] = field(default_factory=list)  # problems to show the user once (config, MCP start-up)
    env: ToolEnv | None = None  # what the tools were built with (approval rules read it); None: from config
    boundary: str | None = None  # why bash is unconfined or unavailable, said once at the first model call
    # The effort this model accepted, per asked-for level (model/effort.py fills it when a model rejects a
    # level or accepts a lower one; /effort clears it); a level missing here is tried as asked.
    effort_cache: dict[str, str | None] = field(default_factory=dict)
    _starting: asyncio.Future[None] | None = field(default=None, init=False, repr=False)
    _servers: Any = field(default=None, init=False, repr=False)  # the started McpServers
    _told_boundary: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.config = as_config(self.config)  # tests may hand a plain dict
        if self.env is None:
            self.env = ToolEnv(workdir=Path.cwd(), home=home_dir(os.environ), config=self.config)

    async def start(self) -> None:
        """Say once what confines bash; start the MCP servers and offer their tools, once; then a no-op."""
        if self.boundary and not self._told_boundary and "bash" in self.tools_by_name:
            self._told_boundary = True  # a research sub-agent (a copy without bash) says nothing
            self.warnings.append(self.boundary)
            emit(notice("boundary", self.boundary))
        if self.mcp is None:
            return
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start_mcp(self.mcp))
        await asyncio.shield(self._starting)  # a cancelled caller must not cancel the start for the others

    async def _start_mcp(self, plan: McpPlan) -> None:
        from ml_intern.tools.mcp.servers import shared_servers

        self._servers = shared_servers(plan.servers, plan.home)
        problems = await self._servers.start()
        offered = [
            tool
            for tool in self._servers.tools(set(plan.reserved))
            if plan.only is None or {tool.name, tool.metadata["mcp_server"]} & set(plan.only)
        ]
        if plan.only is not None:
            known = {tool.name for tool in [*self.tools, *offered]} | set(plan.servers)
            unknown = [name for name in plan.only if name not in known]
            problems = [*problems, f"--tools: unknown tool(s) {', '.join(unknown)}"] if unknown else problems
        for problem in problems:
            self.warnings.append(problem)
            emit(notice("mcp", problem))
        if offered:
            self.tools = [*self.tools, *offered]
            self.prompt = system_prompt(plan.workdir, [tool.name for tool in self.tools])
            for cached in ("bound_model", "tools_by_name"):
                self.__dict__.pop(cached, None)

    async def aclose(self) -> None:
        """Stop the MCP servers this run started (the CLI calls this at exit)."""
        if self._starting is not None and not self._starting.done():
            await asyncio.wait({self._starting})
        if self._servers is not None:
            await self._servers.aclose()

    @cached_property
    def bound_model(self) -> Any:
        """The chat model with every tool bound."""
        return self.chat_model.bind_tools(self.tools) if self.tools else self.chat_model

    @cached_property
    def tools_by_name(self) -> dict[str, Any]:
        return {tool.name: tool for tool in self.tools}


def _get_chat_model(self: Services) -> Any:
    if self.__dict__.get("_chat_model") is None:
        self.__dict__["_lazy"] = True
        self.__dict__["_chat_model"] = make_chat_model(self.model, self.stream, self.config.request_timeout)
    return self.__dict__["_chat_model"]


def _set_chat_model(self: Services, value: Any) -> None:
    self.__dict__["_chat_model"] = value
    self.__dict__["_lazy"] = value is None


def _get_context_window(self: Services) -> int | None:
    window = self.__dict__.get("_context_window")
    if window is None and self.__dict__.get("_lazy") and not self.__dict__.get("_window_known"):
        self.__dict__["_window_known"] = True
        window = self.__dict__["_context_window"] = model_window(self.model)
    return window


def _set_context_window(self: Services, value: int | None) -> None:
    self.__dict__["_context_window"] = value


# Set after the dataclass is made: inside the class body a property would become the fields' default.
Services.chat_model = property(_get_chat_model, _set_chat_model)  # type: ignore[assignment,method-assign]
Services.context_window = property(_get_context_window, _set_context_window)  # type: ignore[assignment,method-assign]


def build_services(
    *,
    model: str | None,
    workdir: Path,
    tool_names: list[str] | None,
    stream: bool,
    environ: Mapping[str, str],
    config: AgentConfig | dict[str, Any] | None,
    chat_model: Any = None,
) -> Services:
    """Resolve the model, build the tools and the prompt; `chat_model` replaces the litellm one (tests)."""
    from ml_intern.tools.local.confine import boundary_notice
    from ml_intern.tools.registry import all_tools, select_tools

    warnings: list[str] = []
    if config is None:  # LangGraph Studio: the user's config, as the CLI loads it
        from ml_intern.configs.loader import load_config

        loaded = load_config(workdir, environ)
        config, environ, warnings = loaded.config, loaded.env, list(loaded.warnings)
    config = as_config(config)
    register_secrets(environ)
    spec = resolve_model(pick_model(model, config.model_name, environ), environ, config)
    env = ToolEnv.from_environ(workdir, home_dir(environ), config, dict(environ))
    everything = all_tools(env)
    servers = {name: server.model_dump() for name, server in config.mcpServers.items()}
    tools = select_tools(everything, tool_names, bool(servers))
    reserved = frozenset(tool.name for tool in everything)
    # MCP servers need the event loop: they start in Services.start, at the first model call.
    plan = McpPlan(servers, env.home, str(workdir), reserved, tool_names) if servers else None
    has_bash = any(tool.name == "bash" for tool in tools)
    boundary = boundary_notice(config, env.workdir, env.home, environ) if has_bash else None
    return Services(
        model=spec,
        chat_model=chat_model,  # None: built on first use (litellm is imported then)
        stream=stream,
        tools=tools,
        config=config,
        prompt=system_prompt(str(workdir), [tool.name for tool in tools]),
        mcp=plan,
        warnings=warnings,
        env=env,
        boundary=boundary,
    )


_built: dict[tuple, Services] = {}  # services built for LangGraph Studio runs, one per distinct setting
_building = threading.Lock()  # held by the worker thread that builds, never on the event loop


async def services_for(ctx: RunContext | None) -> Services:
    """The services of `ctx`: the injected ones, else built once per distinct setting, off the event loop.

    LangGraph Studio sends only the plain settings; building reads config files and the working directory,
    which must not block the server's event loop (langgraph-api refuses blocking calls there).
    """
    ctx = ctx or RunContext()
    if ctx.services is None:
        key = (ctx.model, ctx.workdir, tuple(ctx.tools or ()), ctx.stream)
        ctx.services = _built.get(key) or await asyncio.to_thread(_build_once, key, ctx)
    return ctx.services


def _build_once(key: tuple, ctx: RunContext) -> Services:
    """Build the services for `key` unless another run already did (runs in a worker thread)."""
    with _building:
        if key not in _built:
            environ = dict(os.environ)
            adopt_saved_hf_token(environ)  # as the CLI does: a token saved by `hf auth login` counts
            _built[key] = build_services(
                model=ctx.model or None,
                workdir=Path(ctx.workdir or os.getcwd()),
                tool_names=ctx.tools,
                stream=ctx.stream,
                environ=environ,
                config=None,
            )
            _built[key].chat_model, _built[key].context_window  # noqa: B018 - litellm's import blocks: here
        return _built[key]
