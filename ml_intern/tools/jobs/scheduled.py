"""The scheduled-job operations of `hf_jobs`: jobs that run on a cron schedule and outlive the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml_intern.tools.jobs.format import call_hint, not_found, require, scheduled_details, scheduled_table

if TYPE_CHECKING:
    from ml_intern.tools.jobs.client import JobsClient
    from ml_intern.tools.jobs.spec import JobArgs, Submission


class ScheduledOperations:
    """scheduled run/ps/inspect/delete/suspend/resume, on the operations' client."""

    client: JobsClient

    async def _build(self, args: JobArgs) -> Submission:
        raise NotImplementedError

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
