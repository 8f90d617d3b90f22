"""The Hub side of sandboxes (blocking calls, through the Hub client of tools/hub/client.py): create the
private Docker Space with its secrets and our server, read its stage and URL, delete it, list them.
STUB: helper B owns this module; the names below are the interface the manager (helper D) uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_intern.tools.base import ToolEnv

NAME_PREFIX = "ml-intern-sandbox-"  # every sandbox Space's name starts so: `ml-intern sandboxes` finds them
TOKEN_SECRET = "SANDBOX_API_TOKEN"  # the Space secret the server reads its token from
RUN_VARIABLE = "ML_INTERN_RUN"  # a Space variable: JSON {"host", "pid", "thread"} of the run that made it
RUNNING, FAILED_STAGES = "RUNNING", frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"})


class SandboxFailed(Exception):
    """A sandbox could not be made or reached: one line for the model or the user."""


@dataclass(frozen=True)
class SandboxSpace:
    """A sandbox Space this run made."""

    space_id: str  # "owner/ml-intern-sandbox-…"
    hardware: str  # as asked: "cpu-basic", "t4-small", …
    token: str = field(repr=False)  # the server's own token (never the HF token)
    created_at: float = 0.0  # time.time() when created
    url: str = ""  # the server's base URL once running (SpaceInfo.host), "" before


@dataclass(frozen=True)
class SpaceRow:
    """One sandbox Space as `ml-intern sandboxes` lists it."""

    space_id: str
    hardware: str | None
    stage: str | None
    created_at: float | None
    thread: str  # "" when unknown
    host: str  # the machine whose run made it ("" when unknown)
    pid: int | None  # that run's process id


class SpaceOps:
    """The Hub calls of sandboxes, for the token of `env` (each blocking: call them in a thread)."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env

    def create(
        self, hardware: str, thread_id: str | None, secrets: dict[str, str], sleep_time: int | None
    ) -> SandboxSpace:
        """Create the private Docker Space (hardware, sleep time, secrets incl. a fresh TOKEN_SECRET, the
        RUN_VARIABLE), then upload Dockerfile + server in one commit. Returns before it runs."""
        raise NotImplementedError

    def stage(self, space_id: str) -> tuple[str, str | None]:
        """(runtime stage, current hardware); a transient 404 right after creation reads ("MISSING", None)."""
        raise NotImplementedError

    def url(self, space_id: str) -> str:
        """The running server's base URL (SpaceInfo.host)."""
        raise NotImplementedError

    def delete(self, space_id: str, attempts: int = 3) -> bool:
        """Delete the Space (a missing one counts as deleted), retrying 1 s then 2 s apart; False if not."""
        raise NotImplementedError

    def list(self) -> list[SpaceRow]:
        """The token owner's sandbox Spaces (NAME_PREFIX), with the run that made each (RUN_VARIABLE)."""
        raise NotImplementedError
