"""What every tool family shares: the environment a tool runs in, bounded output, progress events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ml_intern.configs.schema import AgentConfig, as_config
from ml_intern.graph.events import emit

__all__ = ["MAX_RESULT_CHARS", "ToolEnv", "ToolError", "clip", "emit"]

MAX_RESULT_CHARS = 25_000


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

    def __post_init__(self) -> None:
        self.config = as_config(self.config)  # tests and plugins may hand a plain dict

    @classmethod
    def from_environ(
        cls, workdir: Path, home: Path, config: AgentConfig, environ: dict[str, str]
    ) -> ToolEnv:
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
