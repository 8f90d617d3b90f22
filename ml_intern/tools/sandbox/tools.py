"""The sandbox runtime's tools: bash, read, write, edit (the local ones' names and arguments, run by the
sandbox's server in /app) and sandbox_create (other hardware)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import posixpath
import uuid
from pathlib import Path
from typing import Any, Literal

from huggingface_hub import SpaceHardware
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs.format import job_artifact
from ml_intern.tools.local.files import (
    EDIT_DESCRIPTION,
    READ_DESCRIPTION,
    WRITE_DESCRIPTION,
    EditArgs,
    ReadArgs,
    WriteArgs,
    syntax_warning,
)
from ml_intern.tools.local.shell import BashArgs
from ml_intern.tools.local.stream import TIMED_OUT, command_text
from ml_intern.tools.sandbox.client import SandboxClient
from ml_intern.tools.sandbox.rules import create_cost
from ml_intern.tools.sandbox.spaces import FREE_HARDWARE

ROOT = "/app"  # the sandbox's working directory: relative paths resolve here
FILE_SECONDS = 60  # read, write, edit and exists
KILL_SECONDS = 5  # a cancelled command's kill, at most
NO_SANDBOX = "no sandbox in this run: the sandbox runtime was not set up"
# ZeroGPU needs the Gradio SDK: a Docker Space cannot have it.
HARDWARE = tuple(hw.value for hw in SpaceHardware if hw.value != "zero-a10g")
WHERE = f" In the sandbox (relative paths: under {ROOT})."
BASH_DESCRIPTION = (
    f"Run a bash command in the sandbox (a private HF Space, cwd {ROOT}); returns output and exit code. Each "
    "call is a fresh shell. Use read/write/edit for files. Long runs: `nohup CMD > run.log 2>&1 &`, then "
    "tail run.log."
)
CREATE_DESCRIPTION = (
    "Move the sandbox to other hardware (e.g. a GPU smoke test before an hf_jobs run): replaces the default "
    "cpu-basic sandbox, whose files are lost. Paid hardware needs approval and is billed while it runs."
)


class SandboxBashArgs(BashArgs):
    """The local bash's arguments; only the timeout's default differs (said in the description)."""

    timeout: int = Field(0, description="Seconds (0: the default above)")


class CreateArgs(BaseModel):
    hardware: Literal[HARDWARE] = FREE_HARDWARE  # type: ignore[valid-type]
    trackio_space_id: str = ""  # the original's: handed to the sandbox as TRACKIO_SPACE_ID
    trackio_project: str = ""  # and TRACKIO_PROJECT


def sandbox_path(path: str) -> str:
    """The absolute sandbox path the server resolves `path` to (relative ones against /app)."""
    return posixpath.normpath(posixpath.join(ROOT, path.strip()))


def bash_timeout(asked: int, env: ToolEnv) -> int:
    """The seconds a sandbox command may run: the asked ones (0: the configured default), within the max."""
    settings = env.config.sandbox
    return min(max(asked or settings.bash_timeout, 1), settings.bash_max_timeout)


def bash_text(answer: dict[str, Any], timeout: int) -> str:
    """The result of a sandbox command, worded like the local bash's; a ToolError when it timed out. (A cut
    output names its spill file itself.)"""
    output = str(answer.get("output") or "").rstrip("\n")
    if answer.get("timed_out"):
        raise ToolError(output + TIMED_OUT.format(timeout=timeout))
    return command_text(output, answer.get("exit_code"))


def read_text(answer: dict[str, Any], offset: int) -> str:
    """Numbered lines as the local read shows them, saying how to read on (the server bounds them, and
    refuses an offset past the end)."""
    total = int(answer.get("total_lines") or 0)
    if total == 0:
        return "(empty file)"
    content = str(answer.get("content") or "").removesuffix("\n")
    last = offset + content.count("\n")
    return content + (
        f"\n\n[Lines {offset}-{last} of {total}. Continue with offset={last + 1}.]" if last < total else ""
    )


async def read_raw(client: Any, path: str) -> str:
    """The whole text of a sandbox file (at most 1 MB: else a ToolError)."""
    return str((await client.call("read", {"path": path, "raw": True}, FILE_SECONDS)).get("content") or "")


async def python_warning(client: Any, path: str, content: str | None = None) -> str:
    """The syntax and training-script warnings of a Python file (its text read back when not given)."""
    if not path.endswith(".py"):
        return ""
    if content is None:
        try:
            content = await read_raw(client, path)
        except ToolError:
            return ""
    return await asyncio.to_thread(syntax_warning, Path(sandbox_path(path)), content)


async def client_of(env: ToolEnv) -> SandboxClient:
    """The client of the run's sandbox (made on first use: the manager waits for it)."""
    if env.sandbox is None:
        raise ToolError(NO_SANDBOX)
    return await env.sandbox.client()


async def bash(
    env: ToolEnv, command: str, description: str = "", work_dir: str = "", timeout: int = 0
) -> str:
    """Run `command` in the sandbox; a cancelled call stops its own command there (and nothing else: the
    model's background jobs of earlier calls run on)."""
    if not command.strip():
        raise ToolError("No command provided.")
    seconds = bash_timeout(timeout, env)
    sandbox, call_id = await client_of(env), uuid.uuid4().hex
    body = {"command": command, "timeout": seconds, "work_dir": work_dir, "id": call_id}
    try:
        answer = await sandbox.call("bash", body, seconds)
    except asyncio.CancelledError:  # the turn was interrupted: this command must not run on
        with contextlib.suppress(Exception):
            kill = sandbox.call("kill", {"id": call_id}, KILL_SECONDS)
            await asyncio.wait_for(asyncio.shield(kill), KILL_SECONDS)
        raise
    return bash_text(answer, seconds)


async def read(env: ToolEnv, path: str, offset: int = 1, limit: int = 2000) -> str:
    """Numbered lines of a sandbox file (recorded as read: the write guard)."""
    sandbox = await client_of(env)
    offset, limit = max(offset, 1), max(limit, 1)
    answer = await sandbox.call("read", {"path": path, "offset": offset, "limit": limit}, FILE_SECONDS)
    sandbox.read_paths.add(sandbox_path(path))
    return read_text(answer, offset)


async def write(env: ToolEnv, path: str, content: str) -> str:
    """Write a sandbox file; an existing one only after it was read."""
    sandbox, target = await client_of(env), sandbox_path(path)
    state = await sandbox.call("exists", {"path": path}, FILE_SECONDS)
    if state.get("is_dir"):
        raise ToolError(f"{path} is a directory; give a file path.")
    if state.get("exists") and target not in sandbox.read_paths:
        raise ToolError(
            f"{path} already exists in the sandbox and was not read in this session. Read it first, "
            "then write."
        )
    await sandbox.call("write", {"path": path, "content": content}, FILE_SECONDS)
    sandbox.read_paths.add(target)
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    said = f"Wrote {len(content.encode())} bytes ({lines} lines) to {target} in the sandbox"
    return said + await python_warning(sandbox, path, content)


async def edit(
    env: ToolEnv, path: str, old_str: str, new_str: str, replace_all: bool = False, mode: str = "replace"
) -> str:
    """Replace an exact string in a sandbox file that was read."""
    if not old_str:
        raise ToolError("old_str is empty. To create a file use write; to insert text, quote a nearby line.")
    if old_str == new_str and mode == "replace":
        raise ToolError("old_str and new_str are identical; nothing to change.")
    sandbox = await client_of(env)
    if sandbox_path(path) not in sandbox.read_paths:
        raise ToolError(f"You must read {path} before editing it. Use the read tool first.")
    body = {"path": path, "old_str": old_str, "new_str": new_str, "replace_all": replace_all, "mode": mode}
    answer = await sandbox.call("edit", body, FILE_SECONDS)
    text = "\n".join(str(answer[key]) for key in ("message", "snippet") if answer.get(key))
    return (text or f"Edited {sandbox_path(path)}") + await python_warning(sandbox, path)


async def sandbox_create(
    env: ToolEnv, hardware: str = FREE_HARDWARE, trackio_space_id: str = "", trackio_project: str = ""
) -> tuple[str, dict[str, Any] | None]:
    """Make the sandbox on `hardware`; paid hardware running is reported to the turn's budget (the artifact),
    at its price for the most it may live (config sandbox.max_hours)."""
    if env.sandbox is None:
        raise ToolError(NO_SANDBOX)
    extra = {"trackio_space_id": trackio_space_id, "trackio_project": trackio_project}
    text = await env.sandbox.create(hardware, **{key: value for key, value in extra.items() if value})
    paid, cost = await asyncio.to_thread(create_cost, {"hardware": hardware}, env)
    status = env.sandbox.status() or {}
    running = status.get("space_id") and status.get("hardware") == hardware
    return text, job_artifact(str(status["space_id"]), "started", cost) if paid and running else None


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The sandbox's bash, read, write, edit and sandbox_create (none in the local runtime)."""
    if env.runtime != "sandbox":
        return []
    settings = env.config.sandbox
    limits = f" Timeout {settings.bash_timeout}s unless set, at most {settings.bash_max_timeout}s."
    specs = [
        ("bash", bash, BASH_DESCRIPTION + limits, SandboxBashArgs),
        ("read", read, READ_DESCRIPTION + WHERE, ReadArgs),
        ("write", write, WRITE_DESCRIPTION + WHERE, WriteArgs),
        ("edit", edit, EDIT_DESCRIPTION + WHERE, EditArgs),
    ]
    tools = [
        StructuredTool.from_function(
            coroutine=functools.partial(run, env), name=name, description=text, args_schema=schema
        )
        for name, run, text, schema in specs
    ]
    create = StructuredTool.from_function(
        coroutine=functools.partial(sandbox_create, env),
        name="sandbox_create",
        description=CREATE_DESCRIPTION,
        args_schema=CreateArgs,
        response_format="content_and_artifact",  # the artifact reports paid hardware to the turn's budget
    )
    return [*tools, create]
