"""The Hub side of sandboxes (blocking calls, through the Hub client of tools/hub/client.py): create the
private Docker Space with its secrets and our server, read its stage and URL, delete it, list them."""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets as random_secrets
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from ml_intern.secrets import redact, register_secrets
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.hub.client import bounded_requests, make_api, repeatable_writes
from ml_intern.tools.hub.failures import hub_failure, is_hub_failure, status_of

NAME_PREFIX = "ml-intern-sandbox-"  # every sandbox Space's name starts so: `ml-intern sandboxes` finds them
TOKEN_SECRET = "SANDBOX_API_TOKEN"  # the Space secret the server reads its token from
RUN_VARIABLE = "ML_INTERN_RUN"  # a Space variable: JSON {host, pid, start, thread} of the run that made it
RUNNING, MISSING = "RUNNING", "MISSING"  # MISSING: a Space the Hub does not show (just created, or deleted)
# Stages a Space being made does not leave by itself: errors, and asleep, paused, stopped or being deleted.
FAILED_STAGES = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"}) | {
    "SLEEPING", "PAUSED", "STOPPED", "DELETING"}  # fmt: skip
FREE_HARDWARE = "cpu-basic"  # Spaces' free hardware (Jobs bill it, Spaces do not); the Hub sets its sleep
UPLOADED = ("Dockerfile", "server.py")  # from the package, beside this module
REQUEST_TIMEOUT = 30.0  # seconds one Hub request may wait (an exit waits for the call in flight)
REFUSALS = (401, 402, 403)  # statuses that asking again does not change: SandboxRefused
README = """---
title: ml-intern sandbox
sdk: docker
app_port: 7860
pinned: false
tags:
- ml-intern-sandbox
---
A private sandbox made by ml-intern for one thread's tools; `ml-intern sandboxes --delete` removes it.
"""
logger = logging.getLogger("ml_intern.sandbox")


class SandboxFailed(Exception):
    """A sandbox could not be made or reached: one line for the model or the user (`status`: the Hub's)."""

    def __init__(self, line: str, status: int | None = None) -> None:
        super().__init__(line)
        self.status = status


class SandboxRefused(SandboxFailed):
    """The Hub refused (401/402/403) what asking again will not change: its line leads with the remedy."""


@dataclass(frozen=True)
class SandboxSpace:
    """A sandbox Space this run made."""

    space_id: str  # "owner/ml-intern-sandbox-…"
    hardware: str  # as asked: "cpu-basic", "t4-small", …
    token: str = field(repr=False)  # the server's own token (never the HF token)
    created_at: float = 0.0  # time.time() when created
    url: str = ""  # the server's base URL once running (SpaceInfo.host), "" before


def is_sandbox_id(space_id: str) -> bool:
    """Whether `space_id` ("owner/name") names a sandbox Space: only those are ever listed or deleted."""
    owner, _, name = space_id.partition("/")
    return bool(owner) and name.startswith(NAME_PREFIX) and "/" not in name


def run_variable(thread_id: str | None) -> str:
    """The RUN_VARIABLE value: which run (process id and start time, when known) on which machine made it."""
    start = process_start(os.getpid())
    run = {"host": socket.gethostname(), "pid": os.getpid()} | ({"start": start} if start is not None else {})
    return json.dumps(run | {"thread": thread_id or ""})


def process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot (Linux: /proc/PID/stat field 22); None when
    unknown. A recorded pid whose start time differs names another process now (the pid was reused)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])  # fields 3.. follow the command name: field 22 is the 20th of them
    except (OSError, IndexError, ValueError):
        return None


def package_file(name: str) -> bytes:
    """A file shipped beside this module (the server and its Dockerfile)."""
    return resources.files("ml_intern.tools.sandbox").joinpath(name).read_bytes()


class SpaceOps:
    """The Hub calls of sandboxes, for the token of `env` (each blocking: call them in a thread)."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.api = make_api(env)
        self._owner: str | None = None

    @property
    def owner(self) -> str:
        """The token's user name (asked once)."""
        self._owner = self._owner or str(self.hub(self.api.whoami, "reading the token's user")["name"])
        return self._owner

    def new_id(self) -> str:
        """A fresh sandbox Space id of the token's user ("owner/ml-intern-sandbox-<8 hex>")."""
        return f"{self.owner}/{NAME_PREFIX}{random_secrets.token_hex(4)}"

    def create(
        self,
        hardware: str,
        thread_id: str | None,
        secrets: dict[str, str],
        sleep_time: int | None,
        space_id: str = "",
    ) -> SandboxSpace:
        """Create the private Docker Space `space_id` (default: a new_id) with its hardware, sleep time,
        secrets incl. a fresh TOKEN_SECRET and the RUN_VARIABLE, then upload Dockerfile + server in one
        commit. Returns before it runs; whatever fails after the Hub may have made the Space deletes it."""
        token = random_secrets.token_urlsafe(32)
        register_secrets({TOKEN_SECRET: token})
        space_id = space_id or self.new_id()
        space_secrets = [{"key": TOKEN_SECRET, "value": token}]
        space_secrets += [{"key": k, "value": v} for k, v in secrets.items() if k != TOKEN_SECRET]
        create = functools.partial(
            self.api.create_repo,
            space_id,
            repo_type="space",
            space_sdk="docker",
            private=True,
            space_hardware=hardware,  # the Hub checks the name
            space_sleep_time=None if hardware == FREE_HARDWARE else sleep_time,
            space_secrets=space_secrets,
            space_variables=[{"key": RUN_VARIABLE, "value": run_variable(thread_id)}],
        )
        created_at = 0.0
        try:
            self.hub(create, f"creating the sandbox Space {space_id} on {hardware}")
            created_at = time.time()
            self.hub(functools.partial(self.upload, space_id), f"uploading the server to {space_id}")
        except Exception as error:
            # A refused creation made nothing; after no answer or a server error the Space may exist.
            unsure = isinstance(error, SandboxFailed) and (error.status or 500) >= 500
            gone = not (created_at or unsure) or self.delete_quietly(space_id)
            if not gone and created_at and isinstance(error, SandboxFailed):
                raise SandboxFailed(f"{error}; {space_id} is left: ml-intern sandboxes --delete") from None
            raise
        logger.info("created sandbox Space %s on %s", space_id, hardware)
        return SandboxSpace(space_id, hardware, token, created_at)

    def upload(self, space_id: str) -> None:
        """One commit: the Dockerfile, the server and the README that says what the Space is."""
        files = {name: package_file(name) for name in UPLOADED} | {"README.md": README.encode()}
        operations = [CommitOperationAdd(path, data) for path, data in files.items()]
        self.api.create_commit(space_id, operations, commit_message="ml-intern sandbox", repo_type="space")

    def stage(self, space_id: str) -> tuple[str, str | None]:
        """(runtime stage, current hardware); a transient 404 right after creation reads ("MISSING", None)."""
        read = functools.partial(self.api.get_space_runtime, space_id)
        try:
            runtime = self.hub(read, f"reading {space_id}'s stage", missing_ok=True)
        except LookupError:
            return MISSING, None
        return str(runtime.stage), runtime.hardware

    def url(self, space_id: str) -> str:
        """The running server's base URL (SpaceInfo.host)."""
        info = self.hub(lambda: self.api.space_info(space_id), f"reading {space_id}'s address")
        host = (info.host or "").rstrip("/")
        if not host.startswith(("https://", "http://")):
            raise SandboxFailed(f"The Hub gives no address for the sandbox {space_id} yet; try again soon.")
        return host

    def edge_token(self, space_id: str) -> str:
        """A short-lived token for this Space alone (the Hub's `/jwt`, as Gradio's clients use), which the
        private Space's edge takes in place of the HF token: the HF token never goes to the sandbox's host."""

        def fetch() -> str:
            url = f"{self.env.hf_endpoint}/api/spaces/{space_id}/jwt"
            response = get_session().get(url, headers=build_hf_headers(token=self.env.hf_token))
            hf_raise_for_status(response)
            return str(response.json().get("token") or "")

        token = self.hub(fetch, f"reading an access token for {space_id}")
        if not token:
            raise SandboxFailed(f"The Hub gave no access token for the sandbox {space_id}; try again soon.")
        register_secrets({"SANDBOX_EDGE_TOKEN": token})
        return token

    def delete(self, space_id: str) -> bool:
        """Delete the Space (a missing one counts as deleted), retried per the config's `http` policy; False
        when the Hub kept failing, a SandboxRefused when it refuses."""
        if not is_sandbox_id(space_id):
            raise SandboxFailed(f"{space_id} is not an ml-intern sandbox (names start with {NAME_PREFIX})")
        delete = functools.partial(self.api.delete_repo, space_id, repo_type="space", missing_ok=True)
        try:
            with repeatable_writes():  # deleting twice is harmless: HubSession retries it
                self.hub(delete, f"deleting {space_id}")
        except SandboxFailed as failed:
            if isinstance(failed, SandboxRefused):
                raise
            logger.warning("deleting %s failed: %s", space_id, failed)
            return False
        logger.info("deleted sandbox Space %s", space_id)
        return True

    def delete_quietly(self, space_id: str) -> bool:
        """delete, any failure a False (cleaning up after another failure)."""
        with suppress(SandboxFailed):
            return self.delete(space_id)
        return False

    def hub(self, call: Callable[[], Any], what: str, missing_ok: bool = False) -> Any:
        """Run a Hub call, each request bounded by REQUEST_TIMEOUT; a failure becomes a SandboxFailed line
        (a SandboxRefused for REFUSALS, a LookupError for 404 if `missing_ok`)."""
        try:
            with bounded_requests(REQUEST_TIMEOUT):
                return call()
        except Exception as error:
            if not is_hub_failure(error):
                raise
            status = status_of(error)
            if missing_ok and status == 404:
                raise LookupError(what) from None
            failed = SandboxRefused if status in REFUSALS else SandboxFailed
            raise failed(self.explain(error, what), status) from None

    def explain(self, error: BaseException, what: str) -> str:
        """One line for a failed Hub call, the remedy first for 402 and 401/403 (never a token)."""
        status, endpoint = status_of(error), self.env.hf_endpoint
        if status == 402:
            line = f"Spaces need billing (HTTP 402): add a payment method at {endpoint}/settings/billing"
        elif status in (401, 403):
            line = f"your HF token cannot create Spaces (HTTP {status}): use a token with write access"
            line += " (hf auth login)"
        else:
            line = hub_failure(error, what, endpoint)
        return redact(" ".join(line.split()))
