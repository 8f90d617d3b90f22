"""The user's sandbox Spaces as `ml-intern sandboxes` lists them, with the run that made each."""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from ml_intern.tools.sandbox.spaces import NAME_PREFIX, RUN_VARIABLE, SandboxFailed, SpaceOps, is_sandbox_id


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
    start: int | None = None  # when that process started (spaces.process_start), None when not recorded


def read_run_variable(value: str | None) -> tuple[str, int | None, str, int | None]:
    """(host, pid, thread, start) from a RUN_VARIABLE value; "", None, "", None for what is missing or
    malformed."""
    try:
        run = json.loads(value or "")
    except ValueError:
        run = None
    run = run if isinstance(run, dict) else {}
    host, pid, thread, start = run.get("host"), run.get("pid"), run.get("thread"), run.get("start")
    pid = pid if type(pid) is int and pid > 0 else None  # not a bool, not a string
    start = start if type(start) is int and start >= 0 else None
    return host if isinstance(host, str) else "", pid, thread if isinstance(thread, str) else "", start


def list_sandboxes(ops: SpaceOps) -> list[SpaceRow]:
    """The token owner's sandbox Spaces (NAME_PREFIX), with the run that made each (RUN_VARIABLE)."""
    owner, expand = ops.owner, ["runtime", "createdAt"]

    def listing() -> list[Any]:
        return list(ops.api.list_spaces(author=owner, search=NAME_PREFIX, expand=expand))

    found = ops.hub(listing, "listing your sandbox Spaces")
    infos = [info for info in found if is_sandbox_id(info.id) and info.id.split("/")[0] == owner]
    return [sandbox_row(ops, info) for info in sorted(infos, key=lambda info: info.id)]


def sandbox_row(ops: SpaceOps, info: Any) -> SpaceRow:
    """A listed Space with its run read from RUN_VARIABLE (unknown when that cannot be read)."""
    variable = None
    with suppress(SandboxFailed):  # one try, each request bounded: the listing stays fast
        variable = ops.hub(
            lambda: ops.api.get_space_variables(info.id).get(RUN_VARIABLE), f"reading {info.id}"
        )
    host, pid, thread, start = read_run_variable(variable.value if variable is not None else None)
    runtime = info.runtime
    hardware = (runtime.hardware or runtime.requested_hardware) if runtime else None
    created = info.created_at.timestamp() if info.created_at else None
    return SpaceRow(info.id, hardware, runtime.stage if runtime else None, created, thread, host, pid, start)
