"""The `hf_jobs` operations: run, ps, logs, inspect, cancel and the scheduled-job ones."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from contextlib import suppress

from huggingface_hub import JobInfo

from ml_intern.graph import events
from ml_intern.graph.accounting import JobReport
from ml_intern.tools.base import ToolEnv, ToolError, emit
from ml_intern.tools.hub.bootstrap import job_bootstrap
from ml_intern.tools.jobs.client import JobsClient
from ml_intern.tools.jobs.follow import TERMINAL_STAGES, FollowOutcome, follow_job
from ml_intern.tools.jobs.format import (
    call_hint,
    describe,
    job_artifact,
    job_details,
    job_table,
    more_logs,
    not_found,
    require,
    running_detail,
)
from ml_intern.tools.jobs.logops import LOG_CHARS, LogOperations
from ml_intern.tools.jobs.logs import log_path
from ml_intern.tools.jobs.prices import hourly_prices
from ml_intern.tools.jobs.pricing import default_timeout, estimate_cost, format_duration, parse_seconds
from ml_intern.tools.jobs.scheduled import ScheduledOperations
from ml_intern.tools.jobs.script import sandbox_script
from ml_intern.tools.jobs.spec import JobArgs, Submission, build_submission
from ml_intern.tools.local.boundary import writable_roots

Answer = tuple[str, dict[str, JobReport] | None]  # the result text, and the artifact: {"job": JobReport}


class JobOperations(LogOperations, ScheduledOperations):
    """The operations of one run, sharing one Hub client."""

    def __init__(self, env: ToolEnv) -> None:
        self.env = env
        self.client = JobsClient(env)
        settings = env.config.hf_jobs
        self.default_timeout = default_timeout(env.config)
        self.wait_limit_seconds = parse_seconds(settings.wait_limit)  # then return, job runs on
        self.poll_seconds = parse_seconds(settings.poll_interval)  # status checks while quiet
        self.call_id = ""  # the tool call being answered, for its tool_state_change events
        self.complete_logs: set[str] = set()  # jobs whose whole log this run has in its file

    async def dispatch(self, args: JobArgs, call_id: str = "") -> Answer:
        """Run one operation (in the call's namespace): its text (never the HF token or a secret's value) and,
        when it concerns a job, the job's report."""
        ops = copy.copy(self)  # this call's view: its namespace and call id
        ops.client, ops.call_id = self.client.in_namespace(args.namespace), call_id
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

    async def _build(self, args: JobArgs) -> Submission:
        """The job to submit; a script named by path is read off the event loop (in the sandbox runtime, from
        the sandbox)."""
        args = await sandbox_script(args, self.env)
        token, timeout, environ = self.client.token, self.default_timeout, self.env.environ
        roots = writable_roots(self.env)
        submission = await asyncio.to_thread(
            build_submission, args, self.env.workdir, token, timeout, environ, roots
        )
        submission.command = await asyncio.to_thread(job_bootstrap, submission.command, self.env)
        for name, value in submission.secrets.items():
            self.client.hide_value(name, value)
        return submission

    async def run(self, args: JobArgs) -> Answer:
        """Submit a job; with `wait`, follow it to its end (within the wait limit)."""
        submission = await self._build(args)
        logs = self._pending_log() if args.wait else None
        try:
            job = await self._submit(submission)
        except BaseException:
            if logs:
                logs.close()
                logs.discard()
            raise
        prices, _ = await asyncio.to_thread(hourly_prices, self.env)
        cost = estimate_cost(submission.flavor, submission.timeout_seconds, prices)
        about = describe(job, submission, cost, args)
        emit(events.tool_log("hf_jobs", f"Job {job.id} submitted: {job.url}"))
        emit(events.tool_state_change(self.call_id, "hf_jobs", "running", **running_detail(job, args)))
        if not args.wait:
            hints = ", ".join(call_hint(op, job_id=job.id) for op in ("inspect", "logs", "cancel"))
            text = f"Job submitted: {job.id}\n{about}\nIt runs in the background: {hints}"
            return text, job_artifact(job.id, "started", cost)
        assert logs is not None
        logs.move_to(log_path(self.env.home, job.id))
        try:
            outcome = await follow_job(self.client, job.id, self.wait_limit_seconds, self.poll_seconds, logs)
        except asyncio.CancelledError:  # the user interrupted the turn: do not leave a paid job running
            await self._cancel_quietly(job.id)
            raise
        except Exception as err:  # the job is paid for and running: never lose its report
            logs.close()
            outcome = FollowOutcome(job=None, logs=logs, stream_error=f"following failed: {err}")
        if outcome.complete:
            self.complete_logs.add(job.id)
        text = self._report(job, about, outcome)
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
        except ToolError as err:
            if "(HTTP 402)" in str(err):  # no credits: the UI can say so (the original's billing_required)
                namespace = await self.client.namespace()
                emit(
                    events.tool_state_change(self.call_id, "hf_jobs", "billing_required", namespace=namespace)
                )
            raise
        except asyncio.CancelledError:
            with suppress(Exception):
                await self._cancel_quietly((await creating).id)
            raise

    async def _cancel_quietly(self, job_id: str) -> None:
        """Best-effort cancel on interruption; failures must not hide the interruption itself."""
        with suppress(Exception):
            await self.client.jobs(f"cancelling job {job_id}", self.client.api.cancel_job, job_id=job_id)
            emit(events.tool_log("hf_jobs", f"Job {job_id} cancelled (interrupted)."))

    def _report(self, job: JobInfo, about: str, outcome: FollowOutcome) -> str:
        """Final status, the head and tail of the logs, and where the whole log is."""
        latest = outcome.job or job
        more = more_logs(job.id, outcome.logs)
        logs = outcome.logs.render(LOG_CHARS, hint=more)
        stage = f"{latest.status.stage}" + (f" ({latest.status.message})" if latest.status.message else "")
        if outcome.finished:
            head = f"Job {job.id} finished: {stage}"
        else:
            waited = format_duration(int(self.wait_limit_seconds))
            head = (
                f"Job {job.id} is still {stage} after waiting {waited} (hf_jobs.wait_limit); it keeps "
                f"running. Wait for it again with {call_hint('logs', job_id=job.id, follow=True)}, read "
                f"new logs with {call_hint('logs', job_id=job.id, tail=200)}, stop it with "
                f"{call_hint('cancel', job_id=job.id)}."
            )
        broken = f"\n(log stream interrupted: {outcome.stream_error})" if outcome.stream_error else ""
        broken += f"\n(log file: {outcome.logs.note})" if outcome.logs.note else ""
        return f"{head}\n{about}{broken}\nLogs ({outcome.logs.count} lines; {more}):\n{logs}"

    async def ps(self, args: JobArgs) -> str:
        """List jobs: running ones, or all with `all`."""
        jobs = await self.client.jobs("listing jobs", self.client.api.list_jobs)
        if args.status.strip():  # the original's filter: stages containing it, whatever `all` says
            wanted = args.status.strip().upper()
            return job_table([job for job in jobs if wanted in str(job.status.stage)], True)
        shown = jobs if args.all else [job for job in jobs if job.status.stage in ("RUNNING", "SCHEDULING")]
        return job_table(shown, args.all)

    async def inspect(self, args: JobArgs) -> Answer:
        """Status and details of one or more jobs (comma-separated ids); the artifact reports the first."""
        ids = [part.strip() for part in require(args.job_id, "job_id", "inspect").split(",") if part.strip()]
        texts, artifact = [], None
        for job_id in ids[:10]:
            job = await self.client.jobs(
                f"inspecting job {job_id}",
                self.client.api.inspect_job,
                missing=not_found(job_id),
                job_id=job_id,
            )
            state = "ended" if job.status.stage in TERMINAL_STAGES else "running"
            texts.append(job_details(job))
            artifact = artifact or job_artifact(job.id, state)
        return "\n\n".join(texts), artifact

    async def cancel(self, args: JobArgs) -> Answer:
        """Cancel a job."""
        job_id = require(args.job_id, "job_id", "cancel")
        await self.client.jobs(
            f"cancelling job {job_id}", self.client.api.cancel_job, missing=not_found(job_id), job_id=job_id
        )
        text = f"Job {job_id} cancelled. Verify with {call_hint('inspect', job_id=job_id)}."
        return text, job_artifact(job_id, "ended")
