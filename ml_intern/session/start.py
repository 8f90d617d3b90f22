"""From options to a run: the validated config, the model to use, the run context with its services."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from ml_intern.configs.schema import AgentConfig
from ml_intern.errors import UserError
from ml_intern.graph.context import RunContext
from ml_intern.paths import home_dir
from ml_intern.session.options import RunOptions

if TYPE_CHECKING:
    from ml_intern.session.threads import ThreadInfo
    from ml_intern.tools.base import Runtime

SANDBOX_NEEDS_TOKEN = "--sandbox-tools needs a Hugging Face token (write): run hf auth login or set HF_TOKEN"


def prepare_process(environ: MutableMapping[str, str], verbose: bool) -> None:
    """Fill unset variables from `.env` (it may set ML_INTERN_HOME); send library logs to the log file."""
    from ml_intern.configs.loader import read_dotenv
    from ml_intern.logs import setup_logging

    try:
        values = read_dotenv(Path.cwd(), environ)[0]
    except UnicodeDecodeError as exc:
        raise UserError(not_utf8(Path.cwd() / ".env", exc)) from None
    for key, value in values.items():
        environ.setdefault(key, value)
    try:
        setup_logging(home_dir(environ), verbose)
    except OSError as exc:  # a home that cannot hold logs cannot hold threads either
        raise UserError(
            f"cannot write {exc.filename}: {exc.strerror}; set ML_INTERN_HOME to a writable dir"
        ) from None


def not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """The line for a text file with a byte that is not UTF-8."""
    byte, line = exc.object[exc.start : exc.start + 1].hex(), exc.object[: exc.start].count(b"\n") + 1
    return f"{path} is not UTF-8 (byte 0x{byte} on line {line}): save it as UTF-8"


def read_config(workdir: Path, environ: MutableMapping[str, str]) -> tuple[AgentConfig, list[str]]:
    """The validated config and its warnings; `.env` values fill unset variables (never override them)."""
    from ml_intern.configs.loader import ConfigError, load_config

    try:
        loaded = load_config(workdir, environ)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    for key, value in loaded.env.items():
        environ.setdefault(key, value)
    return loaded.config, list(loaded.warnings)


def choose_model(
    options: RunOptions, config: AgentConfig, thread_model: str | None, environ: MutableMapping[str, str]
) -> tuple[str, list[str]]:
    """`--model`, else the thread's model, else config and credentials (a saved HF token counts), else a
    local server that answers on its usual port; and the notices to show (the local server picked)."""
    from ml_intern.model.credentials import adopt_saved_hf_token
    from ml_intern.model.ids import ModelError, pick_model

    adopt_saved_hf_token(environ)
    try:
        return pick_model(options.model or thread_model, config.model_name, environ), []
    except ModelError:
        from ml_intern.model.detect import detect_local_model

        found = detect_local_model(environ)
        if found is None:
            raise
    return found[0], [found[1]]


def checked_model(
    options: RunOptions, config: AgentConfig, environ: MutableMapping[str, str], login: bool = False
) -> tuple[str, list[str]]:
    """A new thread's model (choose_model) and its notices, checked for its key or token before any
    database or thread exists (a ModelError, one line); with `login`, a missing HF token is left to it.
    The sandbox runtime without an HF token is a UserError (one line) here too."""
    from ml_intern.model.credentials import needs_hf_token
    from ml_intern.model.ids import resolve_model

    model_id, notices = choose_model(options, config, None, environ)
    asks_token = login and needs_hf_token(model_id, environ)  # the login asks: the sandbox gets it too
    if not asks_token:
        resolve_model(model_id, environ, config)
        check_runtime_token(tool_runtime(options, config, None), environ)
    return model_id, notices


def tool_runtime(options: RunOptions, config: AgentConfig, thread: ThreadInfo | None) -> Runtime:
    """Where the run's bash, read, write and edit run: a resumed thread's own runtime (fixed when it began;
    `--sandbox-tools` on a local one is a UserError), else `--sandbox-tools`, else the config's."""
    if thread is None:
        return "sandbox" if options.sandbox_tools else config.tool_runtime
    if options.sandbox_tools and thread.tool_runtime != "sandbox":
        raise UserError(
            f"thread {thread.thread_id} runs its tools locally; --sandbox-tools applies to new threads: "
            "start one with ml-intern --sandbox-tools"
        )
    return "sandbox" if thread.tool_runtime == "sandbox" else "local"


def check_runtime_token(runtime: Runtime, environ: Mapping[str, str]) -> None:
    """The sandbox runtime makes Spaces under the user's account: without an HF token, one line."""
    if runtime == "sandbox" and not environ.get("HF_TOKEN"):
        raise UserError(SANDBOX_NEEDS_TOKEN)


def preflight_model(options: RunOptions, environ: MutableMapping[str, str]) -> tuple[RunOptions, list[str]]:
    """Headless, before the database is opened: `options` with the checked model (checked_model) set, and
    the notices to show. A thread being resumed (`options.thread` set) keeps its own model: nothing here."""
    if options.thread is not None:
        return options, []
    config = read_config(Path.cwd(), environ)[0]  # its warnings are the session's to show, once
    model_id, notices = checked_model(options, config, environ)
    return dataclasses.replace(options, model=model_id), notices


def approval_mode(options: RunOptions, config: AgentConfig, interactive: bool) -> str:
    """`--approval`, else the config's `yolo_mode` (a chat: yolo, which still asks about scheduled jobs and
    other always-asked calls, as the original; headless: auto) or `approval`, else ask (chat) or auto."""
    if options.approval:
        return options.approval
    if config.yolo_mode:
        return "yolo" if interactive else "auto"
    return config.approval or ("ask" if interactive else "auto")


def run_context(
    options: RunOptions,
    config: AgentConfig,
    model_id: str,
    interactive: bool,
    environ: MutableMapping[str, str],
    thread: ThreadInfo | None = None,
) -> RunContext:
    """The model, tools and run settings of this process (the model is not called yet); `thread`: the
    stored thread being resumed (its tool runtime is kept)."""
    from ml_intern.model.credentials import needs_hf_token
    from ml_intern.model.ids import resolve_model
    from ml_intern.services import build_services

    if needs_hf_token(model_id, environ):
        raise UserError(
            f"{model_id} needs a Hugging Face token: export HF_TOKEN=hf_..., run hf auth login, "
            "or start ml-intern without a prompt to paste one"
        )
    resolve_model(model_id, environ, config)  # a missing provider key: one line, before any thread exists
    runtime = tool_runtime(options, config, thread)
    check_runtime_token(runtime, environ)
    workdir = Path.cwd()
    tools = list(options.tools) if options.tools is not None else None
    stream = options.stream()
    services = build_services(
        model=model_id,
        workdir=workdir,
        tool_names=tools,
        stream=stream,
        environ=dict(environ),
        config=config,
        headless=not interactive,
        runtime=runtime,
    )
    return RunContext(
        model=model_id,
        workdir=str(workdir),
        approval=approval_mode(options, config, interactive),
        max_iterations=options.max_iterations or config.max_iterations,
        reasoning_effort=config.reasoning_effort,
        tools=tools,
        stream=stream,
        services=services,
        max_cost_usd=options.max_cost,
        max_tokens=options.max_tokens,
    )
