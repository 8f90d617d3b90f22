"""What every tool family shares: the environment a tool runs in, the facts it declares about its tools,
bounded output, progress events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ml_intern.configs.schema import AgentConfig, as_config
from ml_intern.graph.events import emit

__all__ = [
    "MAX_RESULT_CHARS",
    "Effect",
    "ToolEnv",
    "ToolError",
    "Runtime",
    "ToolFacts",
    "clip",
    "emit",
    "normal_operation",
    "operation_of",
]

MAX_RESULT_CHARS = 25_000

# What a call changes: nothing, the agent's own plan, local files, a remote (Hub) repo, an HF job, a
# message sent, files in the thread's sandbox Space, or something its tool does not declare (MCP, custom).
Effect = Literal["nothing", "plan", "local files", "remote repo", "job", "message", "sandbox", "unknown"]
Runtime = Literal["local", "sandbox"]  # where bash, read, write and edit run (config `tool_runtime`)
ApprovalRule = Callable[[dict[str, Any], "ToolEnv"], str | None]  # why a call needs approval, or None


@dataclass(frozen=True)
class ToolFacts:
    """What a tool family declares about one of its tools; `tools/registry.py` collects them."""

    effect: Effect  # what a call changes (unless its operation is one of `read_only_operations`)
    read_only_operations: frozenset[str] = frozenset()  # operations that change nothing, e.g. "list refs"
    approval: ApprovalRule | None = None  # the family's approval rule; None: calls never need approval
    always_ask: Callable[[dict[str, Any]], bool] | None = None  # calls no blanket approval may approve
    # Calls that cost money: (whether the call is paid, its estimated maximum in USD or None) — the yolo cap.
    cost: Callable[[dict[str, Any], ToolEnv], tuple[bool, float | None]] | None = None
    targets: tuple[str, ...] = ()  # arguments that name what a call changes (listed by undo)
    # The original ml-intern's argument names, accepted for ours (tools/checked.py): {"from_rev": "revision"}.
    aliases: Mapping[str, str] = field(default_factory=dict)
    # Arguments (and operation values) the tool takes but the prompt does not show: the original's rarer ones.
    hidden: frozenset[str] = frozenset()
    # The original's arguments with no counterpart here, and why: named when a call uses one.
    unsupported: Mapping[str, str] = field(default_factory=dict)

    def effect_of(self, args: dict[str, Any]) -> Effect:
        """What the call `args` changes; a call naming no operation changes nothing (it cannot run)."""
        if self.read_only_operations:
            operation = operation_of(args)
            if not operation or operation in self.read_only_operations:
                return "nothing"
        return self.effect

    @property
    def read_only(self) -> bool:
        """No call of the tool changes anything."""
        return self.effect == "nothing"


def operation_of(args: dict[str, Any]) -> str:
    """A call's `operation` argument, normalised: "list_refs" and "List refs" read "list refs"."""
    return normal_operation(str(args.get("operation", "")))


def normal_operation(text: str) -> str:
    """An operation name in lower case with single spaces (what rules and argument models compare)."""
    return " ".join(text.lower().replace("_", " ").split())


@dataclass
class ToolEnv:
    """Everything a tool family needs from the run; built once per run by the registry."""

    workdir: Path  # the user's working directory; local tools resolve relative paths against it
    home: Path  # ML_INTERN_HOME: where spilled outputs and logs may be written (never the workdir)
    config: AgentConfig = field(default_factory=AgentConfig)  # the validated agent config
    read_files: set[str] = field(default_factory=set)  # absolute paths read this run (write guard)
    hf_endpoint: str = "https://huggingface.co"  # HF_ENDPOINT: every Hub call goes here
    hf_token: str | None = field(default=None, repr=False)  # HF_TOKEN; sent only to Hugging Face hosts
    datasets_server_url: str = "https://datasets-server.huggingface.co"  # HF_DATASETS_SERVER_URL
    github_api_url: str = "https://api.github.com"  # GITHUB_API_URL
    github_token: str | None = field(default=None, repr=False)  # GITHUB_TOKEN
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # where hf_jobs `secrets` are read
    # Places the boundary computes once per run (tools/local/boundary.py): resolving them is ~60 realpaths.
    boundary_places: dict[str, list[Path]] = field(default_factory=dict, repr=False)
    runtime: Runtime = "local"  # "sandbox": bash/read/write/edit run in a Space (tools/sandbox/)
    # The run's SandboxManager (tools/sandbox/manager.py) when the runtime is "sandbox"; else None.
    sandbox: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.config = as_config(self.config)  # tests and plugins may hand a plain dict

    @classmethod
    def from_environ(cls, workdir: Path, home: Path, config: AgentConfig, environ: dict[str, str]) -> ToolEnv:
        """Read the endpoints and tokens once, at the config boundary."""
        return cls(
            workdir=workdir,
            home=home,
            config=config,
            hf_endpoint=environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/"),
            hf_token=environ.get("HF_TOKEN") or None,
            datasets_server_url=environ.get(
                "HF_DATASETS_SERVER_URL", "https://datasets-server.huggingface.co"
            ).rstrip("/"),
            github_api_url=environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            github_token=environ.get("GITHUB_TOKEN") or None,
            environ=dict(environ),
        )


class ToolError(Exception):
    """A failure the model should read as a tool message (raised by tools, caught by execute_tools)."""


def clip(text: str, limit: int = MAX_RESULT_CHARS, hint: str = "") -> str:
    """Keep the head and tail of `text` within `limit` characters, saying what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    note = f"\n\n... [{cut} characters omitted{'; ' + hint if hint else ''}] ...\n\n"
    return text[:half] + note + text[-half:]
