"""Follow a running job: stream its log lines as `tool_log` events and poll its stage until it ends."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from huggingface_hub import JobInfo, JobStage

from ml_intern.graph import events
from ml_intern.tools.base import clip, emit
from ml_intern.tools.jobs.client import JobsClient
from ml_intern.tools.jobs.format import not_found

TERMINAL_STAGES = {
    stage.value for stage in (JobStage.COMPLETED, JobStage.CANCELED, JobStage.ERROR, JobStage.DELETED)
}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\].*?\x07")
_END = object()


class LogKeeper:
    """The first and last lines of a log of any length."""

    def __init__(self, hide: Callable[[str], str], head: int = 80, tail: int = 250) -> None:
        self.hide = hide  # hides the HF token and secret values: a job that prints them must not leak them
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=tail)
        self.head_size = head
        self.count = 0

    def add(self, line: str) -> str:
        """Keep a line (without terminal escapes, the token or secret values) and return it."""
        line = self.hide(_ANSI.sub("", line).rstrip("\r\n"))
        self.count += 1
        (self.head if len(self.head) < self.head_size else self.tail).append(line)
        return line

    def render(self, limit: int, hint: str) -> str:
        """Head and tail of the log within `limit` characters, saying what was left out."""
        dropped = self.count - len(self.head) - len(self.tail)
        gap = [f"... [{dropped} lines omitted; {hint}] ..."] if dropped > 0 else []
        return clip("\n".join([*self.head, *gap, *self.tail]), limit, hint) if self.count else "(no logs)"


@dataclass
class FollowOutcome:
    """How following a job ended."""

    job: JobInfo | None  # last status seen
    logs: LogKeeper
    finished: bool = False  # reached a terminal stage within the wait limit
    stream_error: str = ""  # why the log stream broke, if it did

    def take(self, item: object) -> bool:
        """Record one item from the log stream; False once the stream is over."""
        if item is _END:
            return False
        if isinstance(item, Exception):
            self.stream_error = f"{type(item).__name__}: {item}"
            return False
        emit(events.tool_log("hf_jobs", self.logs.add(str(item))))
        return True


def is_finished(job: JobInfo | None) -> bool:
    """True once the job is in a terminal stage."""
    return job is not None and job.status.stage in TERMINAL_STAGES


async def follow_job(
    client: JobsClient, job_id: str, limit_seconds: float, poll_seconds: float
) -> FollowOutcome:
    """Stream logs until the job ends or `limit_seconds` pass; the job itself is left alone."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    outcome = FollowOutcome(job=None, logs=LogKeeper(client.hide))
    lines, stop = start_log_pump(client, await client.namespace(), job_id)
    try:
        stream_open = True
        while (remaining := deadline - loop.time()) > 0:
            if stream_open:
                try:
                    item = await asyncio.wait_for(lines.get(), timeout=min(poll_seconds, remaining))
                except TimeoutError:  # quiet for a while: has it ended?
                    item = None
                if item is not None:
                    stream_open = outcome.take(item)
                    continue
            outcome.job = await _inspect(client, job_id)
            if is_finished(outcome.job):
                break
            if not stream_open:  # the logs are over but the stage lags behind: poll it
                await asyncio.sleep(max(0.0, min(poll_seconds, deadline - loop.time())))
    finally:
        stop.set()
    outcome.finished = is_finished(outcome.job)
    return outcome


async def _inspect(client: JobsClient, job_id: str) -> JobInfo:
    """The job's current status."""
    return await client.jobs(f"checking job {job_id}", client.api.inspect_job, job_id=job_id)


def start_log_pump(
    client: JobsClient, namespace: str, job_id: str
) -> tuple[asyncio.Queue[object], threading.Event]:
    """Start a thread that streams the job's log lines onto a queue; set the event to stop it."""
    lines: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()
    # A daemon thread, not to_thread: a blocked log read must never delay interpreter exit.
    threading.Thread(
        target=_pump_logs,
        args=(client, namespace, job_id, asyncio.get_running_loop(), lines, stop),
        daemon=True,
        name="hf-job-logs",
    ).start()
    return lines, stop


def _pump_logs(
    client: JobsClient,
    namespace: str,
    job_id: str,
    loop: asyncio.AbstractEventLoop,
    lines: asyncio.Queue[object],
    stop: threading.Event,
) -> None:
    """Thread body: push each log line (then an error or the end marker) onto the loop's queue."""

    def post(item: object) -> None:
        with suppress(RuntimeError):  # the loop closed while the stream was still open
            loop.call_soon_threadsafe(lines.put_nowait, item)

    try:
        for line in client.api.fetch_job_logs(job_id=job_id, namespace=namespace, follow=True):
            if stop.is_set():
                return
            post(line)
        post(_END)
    except Exception as err:  # reported to the follower, which falls back to polling the stage
        post(err)


async def read_logs(client: JobsClient, job_id: str) -> LogKeeper:
    """The logs available now (no waiting for new lines)."""
    keeper = LogKeeper(client.hide)
    lines = await client.jobs(
        f"fetching logs of job {job_id}",
        client.api.fetch_job_logs,
        missing=not_found(job_id),
        job_id=job_id,
    )
    for line in lines:
        keeper.add(line)
    return keeper
