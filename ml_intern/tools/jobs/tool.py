"""The `hf_jobs` tool: run Python scripts (uv) or Docker commands on Hugging Face Jobs, and manage them."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import ValidationError

from ml_intern.tools.base import ToolEnv, ToolError, operation_of
from ml_intern.tools.jobs.ops import JobOperations
from ml_intern.tools.jobs.pricing import (
    DEFAULT_FLAVOR,
    default_timeout,
    estimate_cost,
    format_duration,
    is_gpu,
    parse_timeout,
)
from ml_intern.tools.jobs.spec import JobArgs, compact_schema, payload_summary

DESCRIPTION = """Run Python scripts (uv) or Docker commands on paid HF Jobs cloud CPUs/GPUs.
run: script (+dependencies, script_args) or command (+image); streams logs until the job ends (capped; \
wait=false returns at once). logs/inspect/cancel take job_id; ps lists jobs.
Job disks are ephemeral: push results to the Hub. Training needs a timeout of hours. Try one job before \
many."""

SCHEDULED_CHANGES = {"scheduled run", "scheduled delete", "scheduled suspend", "scheduled resume"}


def make_tools(env: ToolEnv) -> list[BaseTool]:
    """The `hf_jobs` tool bound to this run's endpoint, token and config."""
    operations = JobOperations(env)

    async def hf_jobs(**kwargs: Any) -> tuple[str, dict[str, Any] | None]:
        try:
            args = JobArgs.model_validate(kwargs)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in err.errors()
            )
            raise ToolError(f"Invalid hf_jobs arguments: {problems}") from err
        return await operations.dispatch(args)

    # A JSON-schema dict keeps the prompt short; JobArgs validates each call.
    return [
        StructuredTool.from_function(
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


def approval_reason(args: dict[str, Any], env: ToolEnv) -> str | None:
    config = env.config
    """Why an `hf_jobs` call needs the user's approval, or None when it does not."""
    operation = operation_of(args)
    if operation not in ("run", *SCHEDULED_CHANGES):
        return None
    if operation not in ("run", "scheduled run"):
        return f"Scheduled job {args.get('scheduled_job_id') or '?'}: {operation.split()[1]}"
    flavor = str(args.get("hardware_flavor") or DEFAULT_FLAVOR)
    if operation == "run" and not is_gpu(flavor) and not config.confirm_cpu_jobs:
        return None
    timeout = args.get("timeout") or default_timeout(config)
    try:
        duration = format_duration(parse_timeout(timeout))
    except ValueError:
        duration = str(timeout)
    cost = estimate_cost(flavor, timeout)
    cost_text = f"est. ${cost:.2f}" if cost is not None else "cost unknown"
    kind = "GPU" if is_gpu(flavor) else "CPU"
    if args.get("namespace"):  # another account pays: say which
        cost_text += f", billed to {args['namespace']}"
    if operation == "run":
        return f"{kind} job on {flavor} for up to {duration} ({cost_text}): {payload_summary(args)}"
    schedule = args.get("schedule") or "?"
    return (
        f"Scheduled job ({schedule}): {kind} on {flavor}, up to {duration} per run ({cost_text} per run): "
        f"{payload_summary(args)}"
    )
