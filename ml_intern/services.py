"""The objects a run needs — chat model, tools, system prompt — built once from its settings."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ml_intern.configs.prompt import system_prompt
from ml_intern.configs.schema import AgentConfig, as_config
from ml_intern.errors import UserError
from ml_intern.graph.events import emit, notice
from ml_intern.model.factory import make_chat_model, model_window
from ml_intern.model.ids import ModelSpec, pick_model, resolve_model
from ml_intern.paths import home_dir
from ml_intern.secrets import register_secrets
from ml_intern.tools.base import Runtime, ToolEnv

STUDIO_NO_SANDBOX = (
    'tool_runtime "sandbox" is not available in LangGraph Studio (no exit there deletes the Space): '
    'set "tool_runtime": "local" in the config, or run the CLI: ml-intern --sandbox-tools'
)


@dataclass(frozen=True)
class McpPlan:
    """What a run needs to start its MCP servers later, inside the event loop (`Services.start`)."""

    servers: dict[str, dict[str, Any]]  # the config's `mcpServers`, validated
    home: Path  # ML_INTERN_HOME: server logs and spilled results go here
    workdir: str  # for the system prompt, rebuilt once the servers' tools are known
    reserved: frozenset[str]  # every built-in and custom tool name: MCP tools must not shadow them
    only: list[str] | None = None  # `--tools`: MCP tools (or servers) to offer; None: all
    headless: bool = False  # the prompt carries the autonomy rules (configs/prompt.py)
    runtime: Runtime = "local"  # where bash/read/write/edit run: the prompt says so


class BuiltOnFirstUse:
    """A Services field whose value, when none is given, is `build(services)` on first read, then kept: the
    chat model and its context window need litellm, whose import takes seconds."""

    def __init__(self, slot: str, build: Callable[[Services], Any]) -> None:
        self.slot, self.build = slot, build  # each Services keeps the value in its attribute `slot`

    def __get__(self, services: Services | None, owner: type | None = None) -> Any:
        if services is None:
            return self
        value = getattr(services, self.slot)
        if value is self:  # not given, not built yet
            value = self.build(services)
            setattr(services, self.slot, value)
        return value

    def __set__(self, services: Services, value: Any) -> None:
        setattr(services, self.slot, self if value is None else value)

    def given(self, services: Services) -> bool:
        return getattr(services, self.slot) is not self


def _litellm_chat_model(services: Services) -> Any:
    return make_chat_model(services.model, services.stream, services.config.request_timeout)


def _litellm_window(services: Services) -> int | None:
    return None if services._chat_model_given else model_window(services.model)


@dataclass
class Services:
    """What nodes use to do their work."""

    model: ModelSpec  # which model, and how to reach it
    # A LangChain chat model, tools not bound; None (the default): a ChatLiteLLM for `model`, built on first
    # read, so that building services does not import litellm (seconds). Tests inject a scripted model.
    chat_model: Any = field(
        default=BuiltOnFirstUse("_chat_model", _litellm_chat_model), repr=False, compare=False
    )
    tools: list[Any] = field(default_factory=list)  # LangChain tools offered to the model
    config: AgentConfig = field(default_factory=AgentConfig)  # the validated agent config
    prompt: str = ""  # the system prompt
    # The model's input window in tokens; None (the default): from litellm's table on first read, None when
    # unknown or when the chat model was injected.
    context_window: int | None = field(
        default=BuiltOnFirstUse("_window", _litellm_window), repr=False, compare=False
    )
    stream: bool = True  # how the ChatLiteLLM built on first read calls the model
    mcp: McpPlan | None = None  # MCP servers to start before the first model call; None: none configured
    warnings: list[str] = field(default_factory=list)  # problems to show the user once (config, MCP start-up)
    env: ToolEnv | None = None  # what the tools were built with (approval rules read it); None: from config
    boundary: str | None = None  # why bash is unconfined or unavailable, said once at the first model call
    # The effort this model accepted, per asked-for level (model/effort.py fills it when a model rejects a
    # level or accepts a lower one; /effort clears it); a level missing here is tried as asked.
    effort_cache: dict[str, str | None] = field(default_factory=dict)
    # Assistant messages (ids) whose signed thinking the provider refused: never replayed again.
    refused_thinking: set[str | None] = field(default_factory=set)
    _chat_model_given: bool = field(default=False, init=False, repr=False)
    _starting: asyncio.Future[None] | None = field(default=None, init=False, repr=False)
    _servers: Any = field(default=None, init=False, repr=False)  # the started McpServers
    _told_boundary: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.config = as_config(self.config)  # tests may hand a plain dict
        self._chat_model_given = Services.chat_model.given(self)
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
            names = [tool.name for tool in self.tools]
            self.prompt = system_prompt(plan.workdir, names, plan.headless, plan.runtime)
            for cached in ("bound_model", "tools_by_name"):
                self.__dict__.pop(cached, None)

    async def aclose(self) -> None:
        """Delete the run's sandbox, stop the MCP servers this run started (the CLI calls this at exit)."""
        sandbox = self.env.sandbox if self.env is not None else None
        try:
            if sandbox is not None:  # first: paid hardware must not wait for MCP servers to stop
                await asyncio.shield(sandbox.aclose())  # a second cancel must not leave the Space running
        finally:
            if self._starting is not None and not self._starting.done():
                await asyncio.wait({self._starting})
            if self._servers is not None:
                await self._servers.aclose()

    def copy(self, **changes: Any) -> Services:
        """dataclasses.replace, which reads every field, but leaving the chat model unbuilt if it is."""
        unbuilt = {"chat_model": self._chat_model, "context_window": self._window}
        copy = dataclasses.replace(self, **{**unbuilt, **changes})
        if "chat_model" not in changes:  # the same model, given or ours
            copy._chat_model_given = self._chat_model_given
        return copy

    def load_model(self) -> None:
        """Build the chat model and look up its window now (importing litellm: seconds) unless done."""
        _ = self.chat_model, self.context_window

    @cached_property
    def bound_model(self) -> Any:
        """The chat model with every tool bound."""
        return self.chat_model.bind_tools(self.tools) if self.tools else self.chat_model

    @cached_property
    def tools_by_name(self) -> dict[str, Any]:
        return {tool.name: tool for tool in self.tools}


def build_services(
    *,
    model: str | None,
    workdir: Path,
    tool_names: list[str] | None,
    stream: bool,
    environ: Mapping[str, str],
    config: AgentConfig | dict[str, Any] | None,
    chat_model: Any = None,
    headless: bool = False,
    runtime: Runtime | None = None,
) -> Services:
    """Resolve the model, build the tools and the prompt; `chat_model` replaces the litellm one (tests).
    `runtime` says where bash, read, write and edit run (None: the config's `tool_runtime`); the services'
    config records it, so that services rebuilt from it (/model) keep it."""
    from ml_intern.tools.local.confine import boundary_notice
    from ml_intern.tools.registry import all_tools, select_tools

    warnings: list[str] = []
    if config is None:  # LangGraph Studio: the user's config, as the CLI loads it
        from ml_intern.configs.loader import load_config

        loaded = load_config(workdir, environ)
        config, environ, warnings = loaded.config, loaded.env, list(loaded.warnings)
        if loaded.config.tool_runtime == "sandbox":  # never silently local; no exit deletes a Space there
            raise UserError(STUDIO_NO_SANDBOX)
    config = as_config(config)
    runtime = runtime or config.tool_runtime
    if config.tool_runtime != runtime:
        config = config.model_copy(update={"tool_runtime": runtime})
    register_secrets(environ)
    spec = resolve_model(pick_model(model, config.model_name, environ), environ, config)
    env = ToolEnv.from_environ(workdir, home_dir(environ), config, dict(environ))
    env.runtime = runtime  # before the tools are built: the local families offer no bash/read/write/edit
    if runtime == "sandbox":
        from ml_intern.tools.sandbox.manager import SandboxManager

        env.sandbox = SandboxManager(env)  # makes nothing yet: the session preloads it (Session.begin)
    everything = all_tools(env)
    servers = {name: server.model_dump() for name, server in config.mcpServers.items()}
    tools = select_tools(everything, tool_names, bool(servers))
    reserved = frozenset(tool.name for tool in everything)
    # MCP servers need the event loop: they start in Services.start, at the first model call.
    plan = (
        McpPlan(servers, env.home, str(workdir), reserved, tool_names, headless, runtime) if servers else None
    )
    has_bash = env.runtime == "local" and any(tool.name == "bash" for tool in tools)  # local bash's boundary
    return Services(
        model=spec,
        chat_model=chat_model,  # None: built on first use (litellm is imported then)
        stream=stream,
        tools=tools,
        config=config,
        prompt=system_prompt(str(workdir), [tool.name for tool in tools], headless, runtime),
        mcp=plan,
        warnings=warnings,
        env=env,
        boundary=boundary_notice(config, env.workdir, env.home, environ) if has_bash else None,
    )
