"""The `bash` tool: run a shell command in the working directory, confined (tools/local/confine.py), without
blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from pathlib import Path

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ml_intern.graph.events import emit, notice
from ml_intern.secrets import is_secret_name, looks_secret
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.hub.bootstrap import bash_environment
from ml_intern.tools.local.confine import FIX, Unconfinable, confined_argv, unconfined_reason
from ml_intern.tools.local.stream import run_command

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 36_000  # 10 h, the original ml-intern's limit (long foreground benchmarks)
CHILD_ENV = {"PYTHONUNBUFFERED": "1", "PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}
# Caches of code or compiled output: the sandbox gets its own, under ~/.cache/ml-intern, so nothing it puts
# there is what the user's own tools later load (their caches are read-only in the sandbox, places.py).
CONFINED_CACHES = {"TRITON_CACHE_DIR": "triton", "MPLCONFIGDIR": "matplotlib", "CUDA_CACHE_PATH": "nv"}
CONFINED_CACHES |= {"PIP_CACHE_DIR": "pip", "UV_CACHE_DIR": "uv", "PRE_COMMIT_HOME": "pre-commit"}
CONFINED_CACHES |= {
    "HF_MODULES_CACHE": "hf-modules",
    "TORCH_HOME": "torch",
    "TORCH_EXTENSIONS_DIR": "torch_ext",
}
# What bwrap cannot stop a command creating in the working directory, and why the user should know.
WATCHED = {".env": "which ml-intern reads at start", ".git": "whose config and hooks your own git obeys"}
CHANGED = "[boundary: this command created or changed {path}, {why}: tell the user]"
# Settings of a repo's .git/config that make the user's own git run a program (a repo the agent created is not
# read-only while it is being created: these are named to the user).
GIT_PROGRAMS = re.compile(
    r"^\s*(fsmonitor|hookspath|sshcommand|pager|editor|askpass|textconv|command|clean|smudge|process|helper"
    r"|external|path)\s*=.*$|^\s*\[\s*(include|includeif)\b.*$|^\s*[\w.-]+\s*=\s*!.*$",
    re.IGNORECASE | re.MULTILINE,
)
MORE_SECRET_NAMES = re.compile(r"^(SSH_AUTH_SOCK|GPG_AGENT_INFO)$")  # handles to credential agents

BASH_DESCRIPTION = (
    "Run a bash command in the working directory; returns output and exit code. Each call is a fresh "
    "shell. Use read/write/edit for files. Long runs: `nohup CMD > run.log 2>&1 &`, then tail run.log. "
    "Secret env vars are withheld (config `bash.env_passthrough`)."
)
CONFINED_DESCRIPTION = (
    " Sandboxed: only the workdir, configured roots, /tmp and ~/.cache are writable; credentials are hidden. "
    "Later calls cannot see background PIDs: bound long runs (`timeout 3h ...`)."
)
READ_ONLY_HINT = (
    "\n\n[sandbox: only {places} are writable here; the user can add directories to `roots` in the config]"
)


class BashArgs(BaseModel):
    command: str
    description: str = Field("", description="5-10 words")
    work_dir: str = ""
    timeout: int = Field(0, description=f"Seconds (default {DEFAULT_TIMEOUT})")


def bash_timeout(asked: int, default: int) -> int:
    """The seconds a command may run: the asked ones (0: the configured default), at most MAX_TIMEOUT."""
    return min(max(asked or default, 1), MAX_TIMEOUT)


def is_secret_variable(name: str, value: str) -> bool:
    """Whether a command must not see this environment variable: a secret by its name or its value."""
    return is_secret_name(name) or bool(MORE_SECRET_NAMES.search(name)) or looks_secret(value)


def child_environment(environ: Mapping[str, str], passthrough: list[str], confined: bool) -> dict[str, str]:
    """The environment of a command: ours without secrets (unless passed through by name), plus CHILD_ENV."""
    kept = {k: v for k, v in environ.items() if k in passthrough or not is_secret_variable(k, v)}
    if confined and Path(kept.get("TMPDIR") or "/tmp").resolve().is_relative_to("/tmp"):
        kept["TMPDIR"] = "/tmp"  # the sandbox's /tmp is private: a host temp dir under it is not there
    if confined:  # the sandbox's own caches, whatever the user's point to
        cache = Path(kept.get("XDG_CACHE_HOME") or Path(kept.get("HOME") or Path.home()) / ".cache")
        kept |= {name: str(cache / "ml-intern" / sub) for name, sub in CONFINED_CACHES.items()}
    return {**kept, **CHILD_ENV}


def watched_state(workdir: Path) -> dict[str, tuple[int, int, int, int] | None]:
    """What says a WATCHED entry of the working directory was created or changed (.git: only created)."""
    states: dict[str, tuple[int, int, int, int] | None] = {}
    for name in WATCHED:
        try:
            info = (workdir / name).lstat()
            states[name] = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        except OSError:
            states[name] = None
    return states


def git_programs(git_dir: Path) -> list[str]:
    """What in a new repo would make the user's git run a program: config lines and hooks (not samples)."""
    try:
        config = (git_dir / "config").read_text(encoding="utf-8", errors="replace")[:65_536]
    except OSError:
        config = ""
    try:
        hooks = sorted(
            hook.name for hook in (git_dir / "hooks").iterdir() if not hook.name.endswith(".sample")
        )
    except OSError:
        hooks = []
    found = [" ".join(match.group(0).split()) for match in GIT_PROGRAMS.finditer(config)]
    return found + [f"hooks/{name}" for name in hooks]


def needs_approval(args: dict, env: ToolEnv) -> str | None:
    """Every call where bash runs unconfined; else commands matching a `bash.approval_patterns` regex."""
    command = str(args.get("command", ""))
    why = unconfined_reason(env.config, env.workdir, env.home, os.environ)
    if why:
        return f"bash runs unconfined here ({why}): {command[:200]}"
    if env.config.bash.matched_approval_pattern(command) is None:
        return None
    return f"shell command that may be destructive outside the working directory: {command[:200]}"


def description(env: ToolEnv) -> str:
    """What the model is told about bash in this run."""
    confined = env.config.bash.confine != "off" and not unconfined_reason(
        env.config, env.workdir, env.home, os.environ
    )
    return BASH_DESCRIPTION + (CONFINED_DESCRIPTION if confined else "")


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """Build the `bash` tool bound to the run's working directory (none in the sandbox runtime)."""
    if env.runtime == "sandbox":
        return []
    default_timeout, bash_config = env.config.bash.timeout, env.config.bash

    async def bash(command: str, description: str = "", work_dir: str = "", timeout: int = 0) -> str:
        if not command.strip():
            raise ToolError("No command provided.")
        cwd = (env.workdir / work_dir).resolve() if work_dir else env.workdir
        if not cwd.is_dir():
            raise ToolError(f"work_dir is not an existing directory: {cwd}")
        timeout = bash_timeout(timeout, default_timeout)
        argv = ["/bin/bash", "-c", command]
        try:
            sandbox = await asyncio.to_thread(
                confined_argv, argv, env.config, env.workdir, env.home, cwd, os.environ
            )
        except Unconfinable as why:
            raise ToolError(
                f"bash must run confined here (bash.confine: on) but {why}. Tell the user to {FIX}."
            ) from None
        child_env = child_environment(os.environ, bash_config.env_passthrough, sandbox is not None)
        # Hub pushes of its scripts are marked (tools/hub); the thread's collection title may touch a file
        child_env = await asyncio.to_thread(bash_environment, child_env, env)
        run_argv = sandbox[0] if sandbox else argv
        before = watched_state(env.workdir)
        result = await run_command(run_argv, cwd, child_env, timeout, env.home / "outputs")
        if sandbox and "Read-only file system" in result:
            result += READ_ONLY_HINT.format(places=sandbox[1].describe())
        for name, state in watched_state(env.workdir).items():
            if state != before[name] and (name != ".git" or before[name] is None):
                said = CHANGED.format(path=env.workdir / name, why=WATCHED[name])
                if name == ".git" and (programs := git_programs(env.workdir / ".git")):
                    said += f" [it makes git run programs: {'; '.join(programs)[:300]}]"
                emit(notice("boundary", said))
                result += "\n\n" + said
        return result

    return [
        StructuredTool.from_function(
            coroutine=bash, name="bash", description=description(env), args_schema=BashArgs
        )
    ]
