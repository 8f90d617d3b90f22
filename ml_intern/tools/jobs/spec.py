"""The `hf_jobs` arguments and how a run request becomes an image + command for the Hub.

Scripts run with uv in the uv image, as `uv run --with DEP ... SCRIPT ARGS` (the command `HfApi.run_uv_job`
builds). We submit that command with `run_job` rather than calling `run_uv_job`, because `run_uv_job`
resolves local paths against the process's current directory (not the agent's workdir), uploads them to a
bucket in the user's namespace, and rejects arguments that merely look like missing local files. Inline code
and workdir files travel inside the command instead, base64-encoded, written to /tmp in the container.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ml_intern.tools.base import ToolError, normal_operation
from ml_intern.tools.jobs.pricing import DEFAULT_FLAVOR, FLAVORS, flavor_table, parse_timeout
from ml_intern.tools.jobs.script import uv_command

UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"  # huggingface_hub's default image for uv jobs
DOCKER_IMAGE = "python:3.12"
# Quiet progress bars so that logs stay readable for the model.
DEFAULT_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "warning",
    "UV_NO_PROGRESS": "1",
    "HF_XET_HIGH_PERFORMANCE": "1",  # fast Hub downloads and uploads through hf_xet
}
TOKEN_NAMES = {"HF_TOKEN", "HUGGINGFACE_HUB_TOKEN"}
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Operation = Literal[
    "run", "ps", "logs", "inspect", "cancel", "scheduled run", "scheduled ps", "scheduled inspect",
    "scheduled delete", "scheduled suspend", "scheduled resume",
]  # fmt: skip
FLAVOR_HINT = "cpu-basic, cpu-upgrade, t4-small, a10g-large, a100-large, h200, h200x8..."


class JobArgs(BaseModel):
    """Arguments of `hf_jobs`; which ones matter depends on `operation`."""

    operation: Operation
    script: str = Field("", description="code, .py path or URL")
    dependencies: list[str] = []
    script_args: list[str] = []
    command: list[str] = []  # Docker mode, with image
    image: str = ""
    hardware_flavor: str = Field(DEFAULT_FLAVOR, description=FLAVOR_HINT)
    timeout: str = Field("", description="e.g. 45m, 4h")
    env: dict[str, Any] = {}
    wait: bool = True
    job_id: str = Field("", description="inspect: a,b ok")
    scheduled_job_id: str = ""
    schedule: str = Field("", description="cron or @daily etc.")
    all: bool = False
    # The original's rarer arguments, taken but not shown in the prompt (jobs/__init__.py `hidden`):
    namespace: str = ""  # run (and bill) in this org or user namespace, one of the user's
    secrets: list[str] | dict[str, str] = []  # job secrets by name; values from ml-intern's environment
    status: str = ""  # ps: only jobs whose stage contains this, e.g. "error"
    python: str = ""  # uv's --python, e.g. "3.11"
    trackio_space_id: str = ""  # set as TRACKIO_SPACE_ID in the job
    trackio_project: str = ""  # set as TRACKIO_PROJECT in the job
    tail: int = 0  # logs: only the last N lines
    offset: int = -1  # logs: lines from this one (0-based) on
    follow: bool = False  # logs: wait for a running job again (re-attach after the wait limit)

    @model_validator(mode="before")
    @classmethod
    def drop_nulls(cls, data: Any) -> Any:
        """Treat `null` like an omitted argument (models often send nulls for unused fields)."""
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data

    @field_validator("timeout", mode="before")
    @classmethod
    def timeout_as_text(cls, value: Any) -> Any:
        """Accept a bare number of seconds as well as '30m'."""
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("job_id", mode="before")
    @classmethod
    def job_ids_as_text(cls, value: Any) -> Any:
        """Accept a list of ids (the original's inspect took one) as comma-separated text."""
        return ",".join(map(str, value)) if isinstance(value, list) else value

    @field_validator("operation", mode="before")
    @classmethod
    def normalise_operation(cls, value: Any) -> Any:
        """Accept 'Scheduled_Run' and friends."""
        return normal_operation(value) if isinstance(value, str) else value


def compact_schema() -> dict[str, Any]:
    """JobArgs' JSON schema without titles or empty defaults: every character here is in every prompt."""
    schema = JobArgs.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema["properties"].values():
        prop.pop("title", None)
        prop.pop("additionalProperties", None)
        if prop.get("default") in ("", [], {}, False, True):
            prop.pop("default")
    return schema


@dataclass
class Submission:
    """What run_job / create_scheduled_job receive."""

    image: str
    command: list[str]
    env: dict[str, str]
    secrets: dict[str, str]
    flavor: str
    timeout_seconds: int


def build_submission(
    args: JobArgs,
    workdir: Path,
    token: str | None,
    timeout: str,
    environ: Mapping[str, str] | None = None,
    roots: Sequence[Path] = (),
) -> Submission:
    """Validate a run request (`timeout` when it gives none) into an image, a command, env and secrets (the
    values of secrets come from `environ`, never from the call)."""
    if bool(args.script) == bool(args.command):
        raise ToolError("Give exactly one of 'script' (Python mode, run with uv) or 'command' (Docker mode).")
    if args.hardware_flavor not in FLAVORS:
        raise ToolError(f"Unknown hardware_flavor {args.hardware_flavor!r}. Available: {flavor_table()}.")
    try:
        timeout_seconds = parse_timeout(args.timeout or timeout)
    except ValueError as err:
        raise ToolError(f"timeout: {err}") from err
    fast: dict[str, str] = {}
    if args.script:
        image, command = args.image or UV_IMAGE, uv_command(args, workdir, roots)
        fast = {"HF_HUB_ENABLE_HF_TRANSFER": "1"}  # uv_command installs hf-transfer
    else:
        image, command = args.image or DOCKER_IMAGE, list(args.command)
    env = {
        **DEFAULT_ENV,
        **fast,
        **trackio_env(args),
        **{k: str(v) for k, v in args.env.items() if k not in TOKEN_NAMES},
    }
    tokens = (
        dict.fromkeys(sorted(TOKEN_NAMES), token) if token else {}
    )  # both names: older libraries read the long one
    secrets = {**job_secrets(args.secrets, environ or {}, token), **tokens}
    return Submission(image, command, env, secrets, args.hardware_flavor, timeout_seconds)


def trackio_env(args: JobArgs) -> dict[str, str]:
    """The Trackio variables the original's trackio_space_id / trackio_project arguments set."""
    pairs = (("TRACKIO_SPACE_ID", args.trackio_space_id), ("TRACKIO_PROJECT", args.trackio_project))
    return {name: value for name, value in pairs if value}


def job_secrets(
    requested: list[str] | dict[str, str], environ: Mapping[str, str], token: str | None
) -> dict[str, str]:
    """Secrets named by the call (["WANDB_API_KEY"], or {"NAME": "$VAR"}), their values read from ml-intern's
    environment, never from the call; the HF token ones get the user's token. A missing variable or a value
    written into the call is a ToolError."""
    wanted = dict.fromkeys(requested, "") if isinstance(requested, list) else dict(requested)
    secrets: dict[str, str] = {}
    for name, source in wanted.items():
        reference, variable = str(source or "").strip(), secret_variable(name, source)
        if not SECRET_NAME.fullmatch(name) or (reference and not reference.startswith("$")):
            raise ToolError(
                'secrets: give environment variable names (["WANDB_API_KEY"]) or references '
                '({"NAME": "$VARIABLE"}); their values are read from ml-intern\'s environment, never written '
                "in the call."
            )
        if name in TOKEN_NAMES and token:
            secrets[name] = token
        elif value := environ.get(variable, ""):
            secrets[name] = value
        else:
            raise ToolError(
                f"secrets: {variable} is not set in ml-intern's environment; ask the user to export it (or "
                "put it in .env) and restart, or leave that secret out."
            )
    return secrets


def secret_variable(name: str, source: Any) -> str:
    """The environment variable a secret's value comes from: `source` ("$VAR" or "${VAR}"), else `name`."""
    reference = str(source or "").strip()
    return reference.removeprefix("$").removeprefix("{").removesuffix("}") if reference else name


def secret_sources(requested: Any) -> dict[str, str] | None:
    """{secret name: the variable its value comes from} for a call's `secrets`; None when unreadable."""
    if isinstance(requested, list):
        return {str(name): str(name) for name in requested}
    if isinstance(requested, dict):
        return {str(name): secret_variable(str(name), source) for name, source in requested.items()}
    return {} if not requested else None
