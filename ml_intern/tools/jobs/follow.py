"""Follow a running job: stream its log lines as `tool_log` events and poll its stage until it ends."""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress
from dataclasses import dataclass

from huggingface_hub import JobInfo, JobStage

from ml_intern.graph import events
from ml_intern.tools.base import ToolError, emit
from ml_intern.tools.jobs.client import JobsClient
from ml_intern.tools.jobs.format import not_found
from ml_intern.tools.jobs.logs import LogKeeper

TERMINAL_STAGES = {
    stage.value for stage in (JobStage.COMPLETED, JobStage.CANCELED, JobStage.ERROR, JobStage.DELETED)
}
_END = object()
MAX_RECONNECTS = 100  # as the original: a training run outlives many dropped connections


@dataclass
class FollowOutcome:
    """How following a job ended."""

    job: JobInfo | None  # last status seen
    logs: LogKeeper
    finished: bool = False  # reached a terminal stage within the wait limit
    stream_error: str = ""  # why the log stream broke, if it did
    complete: bool = False  # the file holds the whole log (caught up from the Hub after the end)

    def take(self, item: object) -> bool:
        """Record one item from the log stream; False once the stream is over."""
        if item is _END:
            return False
        if isinstance(item, Exception):
            self.stream_error = f"{type(item).__name__}: {item}"
            return False
        for line in item if isinstance(item, list) else []:
            emit(events.tool_log("hf_jobs", line))
        return True

    async def take_lines(self, lines: list[str]) -> None:
        """Keep a batch of lines off the event loop (cleaning, redacting, writing), then stream them."""
        self.take(await asyncio.to_thread(self.logs.add_many, lines))


def is_finished(job: JobInfo | None) -> bool:
    """True once the job is in a terminal stage."""
    return job is not None and job.status.stage in TERMINAL_STAGES


async def follow_job(
    client: JobsClient, job_id: str, limit_seconds: float, poll_seconds: float, logs: LogKeeper
) -> FollowOutcome:
    """Stream logs into `logs` until the job ends or `limit_seconds` pass; the job itself is left alone."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    outcome = FollowOutcome(job=None, logs=logs)
    lines: asyncio.Queue[object] | None = None
    stop = threading.Event()
    try:
        lines, stop = start_log_pump(
            client, await client.namespace(), job_id, min(max(poll_seconds, 1.0), 5.0)
        )
        stream_open = True
        while (remaining := deadline - loop.time()) > 0:
            if stream_open:
                try:
                    item = await asyncio.wait_for(lines.get(), timeout=min(poll_seconds, remaining))
                except TimeoutError:  # quiet for a while: has it ended?
                    item = None
                if item is not None:
                    stream_open = await _take_batch(outcome, item, lines)
                    continue
            outcome.job = await _inspect(client, job_id)
            if is_finished(outcome.job):
                break
            if not stream_open:  # the logs are over but the stage lags behind: poll it
                await asyncio.sleep(max(0.0, min(poll_seconds, deadline - loop.time())))
        outcome.finished = is_finished(outcome.job)
        if outcome.finished:  # a stream can end quietly before the job does: always take what it missed
            stop.set()
            await _catch_up(client, job_id, outcome)
    finally:
        stop.set()
        logs.close()
    return outcome


async def _take_batch(outcome: FollowOutcome, item: object, lines: asyncio.Queue[object]) -> bool:
    """Take `item` and every line already queued behind it as one batch; False once the stream is over."""
    batch: list[str] = []
    while isinstance(item, str):
        batch.append(item)
        item = lines.get_nowait() if not lines.empty() and len(batch) < 5000 else None
    if batch:
        await outcome.take_lines(batch)
    return outcome.take(item) if item is not None else True


async def _catch_up(client: JobsClient, job_id: str, outcome: FollowOutcome) -> None:
    """The job ended: take the lines the stream did not deliver from the whole log, which the Hub replays
    from the start. Only then is the log complete; a failed fetch says so."""
    try:
        replay = await client.jobs(f"fetching logs of job {job_id}", client.api.fetch_job_logs, job_id=job_id)
    except ToolError as err:
        outcome.stream_error = f"the log may be incomplete: {err}"
        return
    missed = [str(line) for line in list(replay)[outcome.logs.count :]]
    if missed:
        await outcome.take_lines(missed)
    outcome.stream_error, outcome.complete = "", True


async def _inspect(client: JobsClient, job_id: str) -> JobInfo:
    """The job's current status."""
    return await client.jobs(f"checking job {job_id}", client.api.inspect_job, job_id=job_id)


def start_log_pump(
    client: JobsClient, namespace: str, job_id: str, delay: float
) -> tuple[asyncio.Queue[object], threading.Event]:
    """Start a thread that streams the job's log lines onto a queue; set the event to stop it."""
    lines: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()
    # A daemon thread, not to_thread: a blocked log read must never delay interpreter exit.
    threading.Thread(
        target=_pump_logs,
        args=(client, namespace, job_id, delay, asyncio.get_running_loop(), lines, stop),
        daemon=True,
        name="hf-job-logs",
    ).start()
    return lines, stop


def _pump_logs(
    client: JobsClient,
    namespace: str,
    job_id: str,
    delay: float,
    loop: asyncio.AbstractEventLoop,
    lines: asyncio.Queue[object],
    stop: threading.Event,
) -> None:
    """Thread body: push each log line (then an error or the end marker) onto the loop's queue. A stream that
    breaks or ends while the job still runs is re-opened (the Hub replays from the start: lines already
    posted are skipped)."""

    def post(item: object) -> None:
        with suppress(RuntimeError):  # the loop closed while the stream was still open
            loop.call_soon_threadsafe(lines.put_nowait, item)

    posted, error, ended = 0, None, False
    for _ in range(MAX_RECONNECTS + 1):
        seen = 0
        try:
            for line in client.api.fetch_job_logs(job_id=job_id, namespace=namespace, follow=True):
                if stop.is_set():
                    return
                seen += 1
                if seen > posted:
                    posted += 1
                    post(line)
            error = None
        except Exception as err:  # retried while the job runs, then reported to the follower
            error = err
        if stop.wait(delay):
            return
        if ended := _has_ended(client, namespace, job_id):
            break
    if error is None and not ended:  # gave up while the job may still run: never a quiet end
        error = RuntimeError(f"the log stream ended {MAX_RECONNECTS + 1} times while the job ran")
    post(error if error is not None else _END)


def _has_ended(client: JobsClient, namespace: str, job_id: str) -> bool:
    """True when the job is known to be over (a stage that cannot be read counts as still running)."""
    try:
        job = client.api.inspect_job(job_id=job_id, namespace=namespace)
    except Exception:
        return False
    return job.status.stage in TERMINAL_STAGES


async def read_logs(client: JobsClient, job_id: str, keeper: LogKeeper) -> LogKeeper:
    """The logs available now (no waiting for new lines), into `keeper`."""
    try:
        lines = await client.jobs(
            f"fetching logs of job {job_id}",
            client.api.fetch_job_logs,
            missing=not_found(job_id),
            job_id=job_id,
        )
        await asyncio.to_thread(keeper.add_many, lines)
    finally:
        keeper.close()
    return keeper
