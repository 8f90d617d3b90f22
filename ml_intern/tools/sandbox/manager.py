"""The thread's sandbox: made on first use (or preloaded), replaced by `sandbox_create`, deleted at exit.
STUB: helper D owns it; the tools (helper C) use the methods below."""

from __future__ import annotations

from typing import Any

from ml_intern.tools.base import ToolEnv


class SandboxManager:
    """One per run (ToolEnv.sandbox in the sandbox runtime)."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.thread_id: str | None = None  # set when the session begins a thread (the Space's variable)

    def preload(self) -> None:
        """Start making the default (cpu-basic) sandbox in the background, once (config sandbox.preload)."""

    async def client(self) -> Any:
        """The running sandbox's SandboxClient: waits for the one being made, else makes the default one
        (progress as tool_log events); a ToolError when it cannot be made."""
        raise NotImplementedError

    async def create(self, hardware: str) -> str:
        """sandbox_create: make (or replace the default with) a sandbox on `hardware`; text for the model."""
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """For /status: space id, hardware, stage, price per hour, running since, cost so far."""
        return {}

    async def kill(self) -> None:
        """Stop every command running in the sandbox (a cancelled turn)."""

    async def aclose(self) -> None:
        """Delete the sandbox (with retries); idempotent."""
