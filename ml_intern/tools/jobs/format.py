"""Short text views of jobs and scheduled jobs for the model, and the job report for the turn's budget."""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ml_intern.graph.accounting import JobReport, JobState
from ml_intern.tools.base import ToolError
from ml_intern.tools.jobs.pricing import format_duration

if TYPE_CHECKING:
    from huggingface_hub import JobInfo
    from huggingface_hub._jobs_api import ScheduledJobInfo

    from ml_intern.tools.jobs.logs import LogKeeper
    from ml_intern.tools.jobs.spec import JobArgs, Submission

MAX_ROWS = 30


def call_hint(operation: str, **fields: object) -> str:
    """How the model writes a follow-up call, e.g. {"operation": "logs", "job_id": "abc"}."""
    return json.dumps({"operation": operation, **fields})


def not_found(job_id: str, scheduled: bool = False) -> str:
    """What to say when the Hub does not know a job id."""
    listing = call_hint("scheduled ps" if scheduled else "ps", all=True)
    kind = "Scheduled job" if scheduled else "Job"
    return f"{kind} {job_id} not found: check the id, or list them with {listing}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _command(command: list[str] | None, width: int = 80) -> str:
    text = shlex.join(command or [])
    return text if len(text) <= width else text[: width - 1] + "…"


def job_row(job: JobInfo) -> str:
    """One line: id, stage, flavour, creation time, command."""
    return f"{job.id}  {job.status.stage}  {job.flavor}  {_when(job.created_at)}  {_command(job.command, 60)}"


def job_details(job: JobInfo) -> str:
    """Everything useful about one job, without secret values."""
    lines = [
        f"Job {job.id}: {job.status.stage}" + (f" ({job.status.message})" if job.status.message else ""),
        f"URL: {job.url}",
        f"Hardware: {job.flavor}; image: {job.docker_image or job.space_id}",
        f"Command: {_command(job.command, 300)}",
        f"Created {_when(job.created_at)}; started {_when(job.started_at)}; ended {_when(job.finished_at)}",
    ]
    if job.durations and job.durations.running_secs is not None:
        lines.append(f"Running time: {job.durations.running_secs}s")
    if job.environment:
        lines.append("Env: " + ", ".join(sorted(job.environment)))
    if job.secrets:
        lines.append("Secrets: " + ", ".join(sorted(job.secrets)))
    return "\n".join(lines)


def job_table(jobs: list[JobInfo], show_all: bool) -> str:
    """The most recent jobs first, at most MAX_ROWS of them."""
    if not jobs:
        return (
            "No jobs found." if show_all else f"No running jobs. Use {call_hint('ps', all=True)} to see all."
        )
    jobs = sorted(jobs, key=lambda job: job.created_at.timestamp() if job.created_at else 0.0, reverse=True)
    rows = [job_row(job) for job in jobs[:MAX_ROWS]]
    more = f"\n({len(jobs) - MAX_ROWS} older jobs not shown)" if len(jobs) > MAX_ROWS else ""
    return f"{len(jobs)} job(s): id  stage  hardware  created  command\n" + "\n".join(rows) + more


def scheduled_row(job: ScheduledJobInfo) -> str:
    """One line: id, schedule, state, next run, command."""
    state = "suspended" if job.suspend else "active"
    next_run = _when(job.status.next_job_run_at) if job.status else "-"
    spec = job.job_spec
    return f"{job.id}  {job.schedule}  {state}  next {next_run}  {spec.flavor}  {_command(spec.command, 60)}"


def scheduled_details(job: ScheduledJobInfo) -> str:
    """Everything useful about one scheduled job, without secret values."""
    spec, status = job.job_spec, job.status
    last = f"{status.last_job.id} at {_when(status.last_job.at)}" if status and status.last_job else "-"
    return "\n".join(
        [
            f"Scheduled job {job.id}: {job.schedule} ({'suspended' if job.suspend else 'active'})",
            f"Hardware: {spec.flavor}; image: {spec.docker_image or spec.space_id}",
            f"Command: {_command(spec.command, 300)}",
            f"Next run: {_when(status.next_job_run_at) if status else '-'}; last run: {last}",
        ]
    )


def scheduled_table(jobs: list[ScheduledJobInfo], show_all: bool) -> str:
    """Scheduled jobs, active ones only unless `show_all`."""
    shown = jobs if show_all else [job for job in jobs if not job.suspend]
    if not shown:
        hint = "" if show_all else f" Use {call_hint('scheduled ps', all=True)} to include suspended ones."
        return "No scheduled jobs." + hint
    rows = [scheduled_row(job) for job in shown[:MAX_ROWS]]
    more = f"\n({len(shown) - MAX_ROWS} more not shown)" if len(shown) > MAX_ROWS else ""
    return (
        f"{len(shown)} scheduled job(s): id  schedule  state  next run  hardware  command\n"
        + "\n".join(rows)
        + more
    )


def describe(job: JobInfo, submission: Submission, cost: float | None, args: JobArgs) -> str:
    """URL, hardware, timeout, the most the run can cost, and its Trackio dashboard."""
    cost_text = f"est. at most ${cost:.2f}" if cost is not None else "cost unknown"
    timeout = format_duration(submission.timeout_seconds)
    trackio = ""
    if args.trackio_space_id:
        project = f", project {args.trackio_project}" if args.trackio_project else ""
        trackio = f"\nTrackio dashboard: https://huggingface.co/spaces/{args.trackio_space_id}{project}"
    return f"URL: {job.url}\nHardware: {submission.flavor}, timeout {timeout} ({cost_text}){trackio}"


def running_detail(job: JobInfo, args: JobArgs) -> dict[str, str]:
    """What the running event carries (the original's jobUrl, trackioSpaceId, trackioProject)."""
    detail = {"jobId": job.id, "jobUrl": job.url}
    if args.trackio_space_id:
        detail["trackioSpaceId"] = args.trackio_space_id
        detail["trackioUrl"] = f"https://huggingface.co/spaces/{args.trackio_space_id}"
    if args.trackio_project:
        detail["trackioProject"] = args.trackio_project
    return detail


def more_logs(job_id: str, logs: LogKeeper) -> str:
    """Where the whole log is and how to read more of it."""
    where = f"whole log in {logs.path}, " if logs.path else ""
    return f"{where}more with {call_hint('logs', job_id=job_id, offset=logs.head_end)} or tail=N"


def job_artifact(job_id: str, state: JobState, max_cost_usd: float | None = None) -> dict[str, JobReport]:
    """The artifact that tells the turn's budget about a job (graph/accounting.py `track_jobs`)."""
    return {"job": JobReport(id=job_id, state=state, max_cost_usd=max_cost_usd)}


def require(value: str, name: str, operation: str) -> str:
    """The value of a required argument, or a ToolError naming it."""
    if not value.strip():
        raise ToolError(f"'{name}' is required for operation '{operation}'.")
    return value.strip()


def payload_summary(args: dict[str, Any], width: int = 70) -> str:
    """The first meaningful line of the script, or the command, for an approval line."""
    script, command = args.get("script") or "", args.get("command") or []
    more = ""
    if script:
        lines = [
            ln.strip() for ln in str(script).splitlines() if ln.strip() and not ln.strip().startswith("#")
        ]
        text = lines[0] if lines else str(script).strip()
        more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    else:
        text = shlex.join(str(part) for part in command) if isinstance(command, list) else str(command)
    return (text if len(text) <= width else text[: width - 1] + "…") + more
