"""The Hub side of sandboxes (blocking calls, through the Hub client of tools/hub/client.py): create the
private Docker Space with its secrets and our server, read its stage and URL, delete it, list them."""

from __future__ import annotations

import json
import logging
import os
import secrets as random_secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from huggingface_hub import CommitOperationAdd
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from ml_intern.secrets import redact, register_secrets
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.hub.client import make_api
from ml_intern.tools.hub.failures import first_line, hub_failure, is_hub_failure, status_of

NAME_PREFIX = "ml-intern-sandbox-"  # every sandbox Space's name starts so: `ml-intern sandboxes` finds them
TOKEN_SECRET = "SANDBOX_API_TOKEN"  # the Space secret the server reads its token from
RUN_VARIABLE = "ML_INTERN_RUN"  # a Space variable: JSON {"host", "pid", "thread"} of the run that made it
RUNNING, FAILED_STAGES = "RUNNING", frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"})
MISSING = "MISSING"  # the stage of a Space the Hub does not show (just created, or deleted)
FREE_HARDWARE = "cpu-basic"  # its sleep time is fixed by the Hub (48 h): never sent
UPLOADED = ("Dockerfile", "server.py")  # from the package, beside this module
DELETE_PAUSES = (1.0, 2.0)  # seconds between delete attempts (the last pause repeats)
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
    """A sandbox could not be made or reached: one line for the model or the user."""


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
    """The RUN_VARIABLE value: which run on which machine made the Space."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "thread": thread_id or ""})


def package_file(name: str) -> bytes:
    """A file shipped beside this module (the server and its Dockerfile)."""
    return resources.files("ml_intern.tools.sandbox").joinpath(name).read_bytes()


class SpaceOps:
    """The Hub calls of sandboxes, for the token of `env` (each blocking: call them in a thread)."""

    def __init__(self, env: ToolEnv, sleep: Callable[[float], None] = time.sleep) -> None:
        self.env = env
        self.api = make_api(env)
        self.sleep = sleep  # between delete attempts (tests pass a recorder)
        self._owner: str | None = None

    @property
    def owner(self) -> str:
        """The token's user name (asked once)."""
        if self._owner is None:
            info = self.hub(lambda: self.api.whoami(), "reading the token's user")
            self._owner = str(info["name"])
        return self._owner

    def create(
        self, hardware: str, thread_id: str | None, secrets: dict[str, str], sleep_time: int | None
    ) -> SandboxSpace:
        """Create the private Docker Space (hardware, sleep time, secrets incl. a fresh TOKEN_SECRET, the
        RUN_VARIABLE), then upload Dockerfile + server in one commit. Returns before it runs."""
        token = random_secrets.token_urlsafe(32)
        register_secrets({TOKEN_SECRET: token})
        space_id = f"{self.owner}/{NAME_PREFIX}{random_secrets.token_hex(4)}"
        space_secrets = [{"key": TOKEN_SECRET, "value": token}]
        space_secrets += [{"key": k, "value": v} for k, v in secrets.items() if k != TOKEN_SECRET]
        self.hub(
            lambda: self.api.create_repo(
                space_id,
                repo_type="space",
                space_sdk="docker",
                private=True,
                space_hardware=hardware,  # type: ignore[arg-type]  # the Hub checks the name
                space_sleep_time=None if hardware == FREE_HARDWARE else sleep_time,
                space_secrets=space_secrets,
                space_variables=[{"key": RUN_VARIABLE, "value": run_variable(thread_id)}],
            ),
            f"creating the sandbox Space {space_id} on {hardware}",
        )
        created_at = time.time()
        try:
            self.upload(space_id)
        except Exception as error:
            kept = "" if self.delete(space_id) else f"; {space_id} is left: ml-intern sandboxes --delete"
            if not is_hub_failure(error):
                raise
            raise SandboxFailed(self.explain(error, f"uploading the server to {space_id}") + kept) from None
        logger.info("created sandbox Space %s on %s", space_id, hardware)
        return SandboxSpace(space_id, hardware, token, created_at)

    def upload(self, space_id: str) -> None:
        """One commit: the Dockerfile, the server and the README that says what the Space is."""
        files = {name: package_file(name) for name in UPLOADED} | {"README.md": README.encode()}
        operations = [CommitOperationAdd(path, data) for path, data in files.items()]
        self.api.create_commit(space_id, operations, commit_message="ml-intern sandbox", repo_type="space")

    def stage(self, space_id: str) -> tuple[str, str | None]:
        """(runtime stage, current hardware); a transient 404 right after creation reads ("MISSING", None)."""
        try:
            runtime = self.hub(
                lambda: self.api.get_space_runtime(space_id), f"reading {space_id}'s stage", missing_ok=True
            )
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

    def delete(self, space_id: str, attempts: int = 3) -> bool:
        """Delete the Space (a missing one counts as deleted), retrying 1 s then 2 s apart; False if not."""
        if not is_sandbox_id(space_id):
            raise SandboxFailed(f"{space_id} is not an ml-intern sandbox (names start with {NAME_PREFIX})")
        for attempt in range(attempts):
            if attempt:
                self.sleep(DELETE_PAUSES[min(attempt, len(DELETE_PAUSES)) - 1])
            try:
                self.api.delete_repo(space_id, repo_type="space", missing_ok=True)
            except Exception as error:
                if not is_hub_failure(error):
                    raise
                line = self.explain(error, f"deleting {space_id}")
                logger.warning("attempt %d of %d: %s", attempt + 1, attempts, line)
                continue
            logger.info("deleted sandbox Space %s", space_id)
            return True
        return False

    def hub(self, call: Callable[[], Any], what: str, missing_ok: bool = False) -> Any:
        """Run a Hub call; a failure becomes a SandboxFailed line (a LookupError for 404 if `missing_ok`)."""
        try:
            return call()
        except Exception as error:
            if not is_hub_failure(error):
                raise
            if missing_ok and status_of(error) == 404:
                raise LookupError(what) from None
            raise SandboxFailed(self.explain(error, what)) from None

    def explain(self, error: BaseException, what: str) -> str:
        """One line for a failed Hub call: billing for 402, a write token for 401/403 (never a token)."""
        status, endpoint = status_of(error), self.env.hf_endpoint
        detail = getattr(error, "server_message", None) or first_line(error)
        if status == 402:
            line = (
                f"Payment required (HTTP 402) while {what}: {detail}; Docker Spaces and upgraded "
                "hardware need billing set up: add a payment method or credits at "
                f"{endpoint}/settings/billing, then try again."
            )
        elif status in (401, 403):
            line = (
                f"The Hugging Face token cannot create or manage Spaces (HTTP {status}) while {what}: "
                "use a token with write access (hf auth login, or export HF_TOKEN=hf_...)."
            )
        else:
            line = hub_failure(error, what, endpoint)
        return redact(" ".join(line.split()))
