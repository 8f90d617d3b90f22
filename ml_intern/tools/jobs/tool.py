"""The `hf_jobs` tool: run Python scripts (uv) or Docker commands on Hugging Face Jobs, and manage them."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import ValidationError

from ml_intern.tools.base import ToolEnv, ToolError, operation_of
from ml_intern.tools.guardrails import training_warnings
from ml_intern.tools.jobs.format import payload_summary
from ml_intern.tools.jobs.ops import JobOperations
from ml_intern.tools.jobs.prices import hourly_prices
from ml_intern.tools.jobs.pricing import (
    DEFAULT_FLAVOR,
    default_timeout,
    estimate_cost,
    format_duration,
    is_gpu,
    parse_timeout,
)
from ml_intern.tools.jobs.script import is_path, is_url, read_script
from ml_intern.tools.jobs.spec import (
    TOKEN_NAMES,
    JobArgs,
    compact_schema,
    secret_sources,
)
from ml_intern.tools.local.boundary import writable_roots

DESCRIPTION = """Run a uv Python script or Docker command on paid HF Jobs hardware; waits unless \
wait=false. Job disks vanish: push results to the Hub. Training needs hours of timeout."""

SANDBOX_SCRIPT = (
    "the script {path} is read from the sandbox when the job starts (its code is not shown here) and runs "
    "with your HF_TOKEN"
)
CALL_ID = "__call_id"  # the tool call's id, handed to the coroutine (never part of the schema)


class JobsTool(StructuredTool):
    """A StructuredTool that also hands its coroutine the id of the call, for tool_state_change events."""

    def _to_args_and_kwargs(self, tool_input: Any, tool_call_id: str | None) -> tuple[tuple, dict]:
        args, kwargs = super()._to_args_and_kwargs(tool_input, tool_call_id)
        return args, {**kwargs, CALL_ID: tool_call_id or ""}


SCHEDULED_CHANGES = {"scheduled run", "scheduled delete", "scheduled suspend", "scheduled resume"}


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The `hf_jobs` tool bound to this run's endpoint, token and config."""
    operations = JobOperations(env)

    async def hf_jobs(**kwargs: Any) -> tuple[str, dict[str, Any] | None]:
        call_id = str(kwargs.pop(CALL_ID, "") or "")
        try:
            args = JobArgs.model_validate(kwargs)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in err.errors()
            )
            raise ToolError(f"Invalid hf_jobs arguments: {problems}") from err
        return await operations.dispatch(args, call_id)

    # A JSON-schema dict keeps the prompt short; JobArgs validates each call.
    return [
        JobsTool.from_function(
            coroutine=hf_jobs,
            name="hf_jobs",
            description=DESCRIPTION,
            args_schema=compact_schema(),
            response_format="content_and_artifact",  # the artifact reports the job to the turn's budget
        )
    ]


def is_scheduled_operation(args: dict[str, Any]) -> bool:
    """True for calls that create or change scheduled jobs, which outlive the session: never auto-approve."""
    return operation_of(args) in SCHEDULED_CHANGES


def always_ask(args: dict[str, Any]) -> bool:
    """Scheduled changes, and jobs sent secrets beyond the HF token (an API key in a remote job can leave in
    its logs or over its network): a human decides, whatever the approval mode."""
    return is_scheduled_operation(args) or bool(secrets_sent(args))


def secrets_sent(args: dict[str, Any]) -> list[str]:
    """The secrets a run sends besides the HF token, as "NAME" or "NAME (from $VARIABLE)" (never values)."""
    if operation_of(args) not in ("run", "scheduled run"):
        return []
    sources = secret_sources(args.get("secrets"))
    if sources is None:
        return [f"unreadable secrets argument {str(args.get('secrets'))[:60]!r}"]
    return [
        name if variable == name else f"{name} (from ${variable})"
        for name, variable in sources.items()
        if not (name in TOKEN_NAMES and variable in TOKEN_NAMES)
    ]


def approval_reason(args: dict[str, Any], env: ToolEnv) -> str | None:
    """Why an `hf_jobs` call needs the user's approval, or None when it does not."""
    config = env.config
    operation = operation_of(args)
    namespace = str(args.get("namespace") or "").strip()
    where = f" in {namespace}" if namespace else ""
    if operation == "cancel" and namespace:  # an org's jobs, colleagues' included
        return f"Cancel job {args.get('job_id') or '?'} in {namespace}"
    if operation not in ("run", *SCHEDULED_CHANGES):
        return None
    if operation not in ("run", "scheduled run"):
        return f"Scheduled job {args.get('scheduled_job_id') or '?'}{where}: {operation.split()[1]}"
    secrets = secrets_sent(args)
    sends = f"; sends secrets {', '.join(secrets)}" if secrets else ""
    flavor = str(args.get("hardware_flavor") or DEFAULT_FLAVOR)
    if operation == "run" and not is_gpu(flavor) and not config.confirm_cpu_jobs and not secrets:
        return None
    timeout = args.get("timeout") or default_timeout(config)
    try:
        duration = format_duration(parse_timeout(timeout))
    except ValueError:
        duration = str(timeout)
    prices, from_hub = hourly_prices(env)
    cost = estimate_cost(flavor, timeout, prices)
    cost_text = f"est. ${cost:.2f}" if cost is not None else "cost unknown"
    cost_text += "" if from_hub or cost is None else " at list prices"
    kind = "GPU" if is_gpu(flavor) else "CPU"
    if namespace:  # another account pays: say which
        cost_text += f", billed to {namespace}"
    warns = "".join(f"; WARNING: {text.rstrip('.')}" for text in script_warnings(args, env))
    if operation == "run":
        summary = f"{payload_summary(args)}{sends}{warns}"
        return f"{kind} job on {flavor} for up to {duration} ({cost_text}): {summary}"
    schedule = args.get("schedule") or "?"
    return (
        f"Scheduled job ({schedule}): {kind} on {flavor}, up to {duration} per run ({cost_text} per run): "
        f"{payload_summary(args)}{sends}{warns}"
    )


def run_cost(args: dict[str, Any], env: ToolEnv) -> tuple[bool, float | None]:
    """Whether the call starts a paid job (`run`), and its estimated maximum in USD (None: unknown)."""
    if operation_of(args) != "run":
        return False, None
    flavor = str(args.get("hardware_flavor") or DEFAULT_FLAVOR)
    return True, estimate_cost(
        flavor, args.get("timeout") or default_timeout(env.config), hourly_prices(env)[0]
    )


def script_warnings(args: dict[str, Any], env: ToolEnv) -> list[str]:
    """The guardrail warnings for a run's script (inline, or a workdir file): a model that would be lost."""
    script = str(args.get("script") or "")
    if not script or is_url(script):
        return []
    if env.runtime == "sandbox" and is_path(script):  # its write was warned about; what runs is unseen here
        return [SANDBOX_SCRIPT.format(path=script.strip())]
    try:
        return training_warnings(read_script(script, env.workdir, writable_roots(env))[1])
    except ToolError as refused:  # said before anyone approves a call that cannot run
        return [f"the job will not start: {refused}"]
    except (OSError, UnicodeDecodeError):
        return []
