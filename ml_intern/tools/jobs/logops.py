"""The log operations of `hf_jobs`: `logs` (from the kept file or the Hub), waiting again for a running job,
and the log file of a job about to be submitted."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.jobs.follow import FollowOutcome, follow_job, read_logs
from ml_intern.tools.jobs.format import more_logs, not_found, require
from ml_intern.tools.jobs.logs import LogKeeper, file_view, keeper_of_file, log_path
from ml_intern.tools.jobs.spec import TOKEN_NAMES

if TYPE_CHECKING:
    from huggingface_hub import JobInfo

    from ml_intern.tools.jobs.client import JobsClient
    from ml_intern.tools.jobs.spec import JobArgs

LOG_CHARS = 12_000  # room for job logs in one result


class LogOperations:
    """logs and reattach, on the operations' client, home and wait settings."""

    env: ToolEnv
    client: JobsClient
    complete_logs: set[str]
    wait_limit_seconds: float
    poll_seconds: float

    def _report(self, job: JobInfo, about: str, outcome: FollowOutcome) -> str:
        raise NotImplementedError

    def _pending_log(self) -> LogKeeper:
        """The log file of a job about to be submitted, opened first: a disk that cannot take it fails the
        call before anything is paid for (renamed to the job's id once it exists)."""
        path = log_path(self.env.home, f"pending-{secrets.token_hex(8)}")
        try:
            return LogKeeper(self.client.hide, path)
        except OSError as err:
            raise ToolError(
                f"Cannot keep the job's log in {path.parent} ({err}); nothing was submitted."
            ) from err

    async def logs(self, args: JobArgs) -> str:
        """A job's whole log, kept in a file (fetched from the Hub unless this run followed it to its end),
        shown as head and tail, or its last `tail` lines, or the lines from `offset`."""
        job_id = require(args.job_id, "job_id", "logs")
        path = log_path(self.env.home, job_id)
        if args.follow:
            return await self.reattach(job_id)
        if job_id not in self.complete_logs or not path.is_file():
            await self._hide_job_secrets(job_id)
            keeper = await read_logs(self.client, job_id, self._keeper(path))
            if keeper.note:
                return f"Logs of job {job_id}: the log file failed ({keeper.note})."
        if args.tail > 0 or args.offset >= 0:
            text, count = await asyncio.to_thread(file_view, path, LOG_CHARS, args.tail, args.offset)
            return f"Logs of job {job_id} ({count} lines, all in {path}):\n{text or '(no logs)'}"
        keeper = await asyncio.to_thread(keeper_of_file, path)
        more = more_logs(job_id, keeper)
        return f"Logs of job {job_id} ({keeper.count} lines; {more}):\n" + keeper.render(LOG_CHARS, more)

    def _keeper(self, path: Path) -> LogKeeper:
        """A job's log file opened for writing; a ToolError when it cannot be."""
        try:
            return LogKeeper(self.client.hide, path)
        except OSError as err:
            raise ToolError(f"Cannot write the job's log to {path} ({err}).") from err

    async def _hide_job_secrets(self, job_id: str) -> JobInfo:
        """Hide the local values of a job's secret names and of the token names: a job started by an earlier
        process was sent values this one never saw."""
        job = await self.client.jobs(
            f"checking job {job_id}", self.client.api.inspect_job, missing=not_found(job_id), job_id=job_id
        )
        for name in sorted({*(job.secrets or {}), *TOKEN_NAMES}):
            self.client.hide_value(name, self.env.environ.get(name, ""))
        return job

    async def reattach(self, job_id: str) -> str:
        """Wait again for a job a run left running (within the wait limit), its whole log to the file."""
        job = await self._hide_job_secrets(job_id)
        keeper = self._keeper(log_path(self.env.home, job_id))
        outcome = await follow_job(self.client, job_id, self.wait_limit_seconds, self.poll_seconds, keeper)
        if outcome.complete:
            self.complete_logs.add(job_id)
        return self._report(job, f"URL: {job.url}", outcome)
