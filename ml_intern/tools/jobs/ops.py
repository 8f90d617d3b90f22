"""The `hf_jobs` operations: run, ps, logs, inspect, cancel and the scheduled-job ones."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from contextlib import suppress

from huggingface_hub import JobInfo

from ml_intern.graph import events
from ml_intern.graph.accounting import JobReport, JobState
from ml_intern.tools.base import ToolEnv, ToolError, emit
from ml_intern.tools.jobs.client import JobsClient
from ml_intern.tools.jobs.follow import TERMINAL_STAGES, FollowOutcome, follow_job, read_logs
from ml_intern.tools.jobs.format import (
    call_hint,
    job_details,
    job_table,
    not_found,
    scheduled_details,
    scheduled_table,
)
from ml_intern.tools.jobs.pricing import default_timeout, estimate_cost, format_duration, parse_seconds
from ml_intern.tools.jobs.spec import JobArgs, Submission, build_submission

LOG_CHARS = 12_000  # room for job logs in one result
Answer = tuple[str, dict[str, JobReport] | None]  # the result text, and the artifact: {"job": JobReport}


class JobOperations:
    """The operations of one run, sharing one Hub client."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.client = JobsClient(env)
        settings = env.config.hf_jobs
        self.default_timeout = default_timeout(env.config)
        self.wait_limit_seconds = parse_seconds(settings.wait_limit)  # then return, job runs on
        self.poll_seconds = parse_seconds(settings.poll_interval)  # status checks while quiet

    async def dispatch(self, args: JobArgs) -> Answer:
        """Run one operation (in the call's namespace): its text (never the HF token or a secret's value) and,
        when it concerns a job, the job's report."""
        ops = self.in_namespace(args.namespace)
        handlers: dict[str, Callable[[JobArgs], Awaitable[str | Answer]]] = {
            "run": ops.run,
            "ps": ops.ps,
            "logs": ops.logs,
            "inspect": ops.inspect,
            "cancel": ops.cancel,
            "scheduled run": ops.scheduled_run,
            "scheduled ps": ops.scheduled_ps,
            "scheduled inspect": ops.scheduled_inspect,
        }
        for action in ("delete", "suspend", "resume"):
            handlers[f"scheduled {action}"] = ops.scheduled_change
        answer = await handlers[args.operation](args)
        text, artifact = answer if isinstance(answer, tuple) else (answer, None)
        return self.client.hide(text), artifact

    def in_namespace(self, namespace: str) -> JobOperations:
        """These operations for jobs in `namespace` (the user's own when empty)."""
        if not namespace.strip():
            return self
        view = copy.copy(self)
        view.client = self.client.in_namespace(namespace)
        return view

    async def _build(self, args: JobArgs) -> Submission:
        """The job to submit; a script named by path is read off the event loop."""
        token, timeout, environ = self.client.token, self.default_timeout, self.env.environ
        submission = await asyncio.to_thread(
            build_submission, args, self.env.workdir, token, timeout, environ
        )
        for name, value in submission.secrets.items():
            if len(value) >= 4:  # shorter ones would mark up ordinary text
                self.client.hidden.setdefault(value, f"[{name}]")
        return submission

    async def run(self, args: JobArgs) -> Answer:
        """Submit a job; with `wait`, follow it to its end (within the wait limit)."""
        submission = await self._build(args)
        job = await self._submit(submission)
        emit(events.tool_log("hf_jobs", f"Job {job.id} submitted: {job.url}"))
        cost = estimate_cost(submission.flavor, submission.timeout_seconds)
        if not args.wait:
            hints = ", ".join(call_hint(op, job_id=job.id) for op in ("inspect", "logs", "cancel"))
            text = f"Job submitted: {job.id}\n{describe(job, submission)}\nIt runs in the background: {hints}"
            return text, job_artifact(job.id, "started", cost)
        try:
            outcome = await follow_job(self.client, job.id, self.wait_limit_seconds, self.poll_seconds)
        except asyncio.CancelledError:  # the user interrupted the turn: do not leave a paid job running
            await self._cancel_quietly(job.id)
            raise
        text = self._report(job, submission, outcome)
        return text, job_artifact(job.id, "ended" if outcome.finished else "started", cost)

    async def _submit(self, submission: Submission) -> JobInfo:
        """Create the job; if interrupted meanwhile, cancel the job once the Hub has created it."""
        creating = asyncio.ensure_future(
            self.client.create(
                "submitting the job",
                self.client.api.run_job,
                image=submission.image,
                command=submission.command,
                env=submission.env,
                secrets=submission.secrets,
                flavor=submission.flavor,
                timeout=submission.timeout_seconds,
            )
        )
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            with suppress(Exception):
                await self._cancel_quietly((await creating).id)
            raise

    async def _cancel_quietly(self, job_id: str) -> None:
        """Best-effort cancel on interruption; failures must not hide the interruption itself."""
        with suppress(Exception):
            await self.client.jobs(f"cancelling job {job_id}", self.client.api.cancel_job, job_id=job_id)
            emit(events.tool_log("hf_jobs", f"Job {job_id} cancelled (interrupted)."))

    def _report(self, job: JobInfo, submission: Submission, outcome: FollowOutcome) -> str:
        """Final status plus the head and tail of the logs."""
        latest = outcome.job or job
        logs = outcome.logs.render(LOG_CHARS, hint=f"full log: {call_hint('logs', job_id=job.id)}")
        stage = f"{latest.status.stage}" + (f" ({latest.status.message})" if latest.status.message else "")
        if outcome.finished:
            head = f"Job {job.id} finished: {stage}"
        else:
            waited = format_duration(int(self.wait_limit_seconds))
            head = (
                f"Job {job.id} is still {stage} after waiting {waited}; it keeps running. Check it with "
                f"{call_hint('inspect', job_id=job.id)}, stop it with {call_hint('cancel', job_id=job.id)}."
            )
        broken = f"\n(log stream interrupted: {outcome.stream_error})" if outcome.stream_error else ""
        return f"{head}\n{describe(job, submission)}{broken}\nLogs ({outcome.logs.count} lines):\n{logs}"

    async def ps(self, args: JobArgs) -> str:
        """List jobs: running ones, or all with `all`."""
        jobs = await self.client.jobs("listing jobs", self.client.api.list_jobs)
        if args.status.strip():  # the original's filter: stages containing it, whatever `all` says
            wanted = args.status.strip().upper()
            return job_table([job for job in jobs if wanted in str(job.status.stage)], True)
        shown = jobs if args.all else [job for job in jobs if job.status.stage in ("RUNNING", "SCHEDULING")]
        return job_table(shown, args.all)

    async def logs(self, args: JobArgs) -> str:
        """The logs available now for a job."""
        job_id = require(args.job_id, "job_id", "logs")
        keeper = await read_logs(self.client, job_id)
        return f"Logs of job {job_id} ({keeper.count} lines):\n" + keeper.render(
            LOG_CHARS, "showing head and tail"
        )

    async def inspect(self, args: JobArgs) -> Answer:
        """Status and details of a job."""
        job_id = require(args.job_id, "job_id", "inspect")
        job = await self.client.jobs(
            f"inspecting job {job_id}", self.client.api.inspect_job, missing=not_found(job_id), job_id=job_id
        )
        state = "ended" if job.status.stage in TERMINAL_STAGES else "running"
        return job_details(job), job_artifact(job.id, state)

    async def cancel(self, args: JobArgs) -> Answer:
        """Cancel a job."""
        job_id = require(args.job_id, "job_id", "cancel")
        await self.client.jobs(
            f"cancelling job {job_id}", self.client.api.cancel_job, missing=not_found(job_id), job_id=job_id
        )
        text = f"Job {job_id} cancelled. Verify with {call_hint('inspect', job_id=job_id)}."
        return text, job_artifact(job_id, "ended")

    async def scheduled_run(self, args: JobArgs) -> str:
        """Create a job that runs on a schedule."""
        schedule = require(args.schedule, "schedule", "scheduled run")
        sub = await self._build(args)
        created = await self.client.create(
            "creating the scheduled job",
            self.client.api.create_scheduled_job,
            image=sub.image,
            command=sub.command,
            schedule=schedule,
            env=sub.env,
            secrets=sub.secrets,
            flavor=sub.flavor,
            timeout=sub.timeout_seconds,
        )
        hint = call_hint("scheduled delete", scheduled_job_id=created.id)
        return f"Scheduled job created.\n{scheduled_details(created)}\nRemove it with {hint}."

    async def scheduled_ps(self, args: JobArgs) -> str:
        """List scheduled jobs."""
        jobs = await self.client.jobs("listing scheduled jobs", self.client.api.list_scheduled_jobs)
        return scheduled_table(jobs, args.all)

    async def scheduled_inspect(self, args: JobArgs) -> str:
        """Details of a scheduled job."""
        job_id = require(args.scheduled_job_id, "scheduled_job_id", args.operation)
        job = await self.client.jobs(
            f"inspecting scheduled job {job_id}",
            self.client.api.inspect_scheduled_job,
            missing=not_found(job_id, scheduled=True),
            scheduled_job_id=job_id,
        )
        return scheduled_details(job)

    async def scheduled_change(self, args: JobArgs) -> str:
        """Delete, suspend or resume a scheduled job."""
        job_id = require(args.scheduled_job_id, "scheduled_job_id", args.operation)
        action = args.operation.split()[1]
        method = getattr(self.client.api, f"{action}_scheduled_job")  # delete_/suspend_/resume_scheduled_job
        missing = not_found(job_id, scheduled=True)
        await self.client.jobs(
            f"changing scheduled job {job_id}", method, missing=missing, scheduled_job_id=job_id
        )
        done = {"delete": "deleted", "suspend": "suspended", "resume": "resumed"}[action]
        return f"Scheduled job {job_id} {done}."


def describe(job: JobInfo, submission: Submission) -> str:
    """URL, hardware, timeout and the most the run can cost."""
    cost = estimate_cost(submission.flavor, submission.timeout_seconds)
    cost_text = f"est. at most ${cost:.2f}" if cost is not None else "cost unknown"
    timeout = format_duration(submission.timeout_seconds)
    return f"URL: {job.url}\nHardware: {submission.flavor}, timeout {timeout} ({cost_text})"


def job_artifact(job_id: str, state: JobState, max_cost_usd: float | None = None) -> dict[str, JobReport]:
    """The artifact that tells the turn's budget about a job (graph/accounting.py `track_jobs`)."""
    return {"job": JobReport(id=job_id, state=state, max_cost_usd=max_cost_usd)}


def require(value: str, name: str, operation: str) -> str:
    """The value of a required argument, or a ToolError naming it."""
    if not value.strip():
        raise ToolError(f"'{name}' is required for operation '{operation}'.")
    return value.strip()
