"""A local stand-in for the Hugging Face Jobs API: the routes `HfApi` uses, with every request recorded.

Point `ToolEnv.hf_endpoint` at `server.url`. `ns` is the user's name or one of `orgs` (which whoami-v2 lists).
Routes: `GET /api/whoami-v2`; `POST|GET /api/jobs/{ns}`;
`GET /api/jobs/{ns}/{id}` (RUNNING until `polls` inspections, then the planned final stage);
`GET /api/jobs/{ns}/{id}/logs` (server-sent events, one `data: {"timestamp", "data"}` per line; a job that
is not held finishes once its logs are served, a held one keeps the stream open until it is cancelled);
`POST /api/jobs/{ns}/{id}/cancel`; `POST|GET /api/scheduled-jobs/{ns}`; `GET|DELETE
/api/scheduled-jobs/{ns}/{id}`; `POST /api/scheduled-jobs/{ns}/{id}/suspend|resume`; `GET /api/jobs/hardware`
(`hardware`: {flavour: USD per hour}, served per minute as the Hub does).
A plan's `drop_after` cuts the first log stream after that many lines (an unfinished response); the next
request replays the log from the start, with the same timestamps, as the Hub does (or, with
`reconnect_status`, fails once first).
Every route answers 401 unless `Authorization: Bearer <token>` matches; `fail()` queues error answers.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ml_intern.tools.jobs.pricing import HOURLY_USD
from tests.fakes.http_fake import serve_in_background, stop_serving

TERMINAL = {"COMPLETED", "CANCELED", "ERROR", "DELETED"}


def now_iso() -> str:
    """The Hub's timestamp format: 2025-07-16T20:35:12.808Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


UNITS_PER_HOUR = {"minute": 60, "min": 60, "per minute": 60, "hour": 1, "hr": 1, "second": 3600}


def hardware(name: str, hourly: float, unit: str = "minute") -> dict[str, Any]:
    """One entry of GET /api/jobs/hardware, priced per `unit` (the Hub says "minute")."""
    micro = round(hourly * 1_000_000 / UNITS_PER_HOUR[unit])
    accelerator = (
        None
        if name.startswith("cpu-")
        else {
            "type": "gpu",
            "model": name,
            "quantity": "1",
            "vram": "24 GB",
            "manufacturer": "Nvidia",
        }
    )
    return {
        "name": name,
        "prettyName": name,
        "cpu": "8 vCPU",
        "ram": "32 GB",
        "ephemeralStorage": "100 GB",
        "accelerator": accelerator,
        "unitCostMicroUSD": micro,
        "unitCostUSD": micro / 1_000_000,
        "unitLabel": unit,
    }


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    body: Any
    headers: dict[str, str]


@dataclass
class Plan:
    """How the next created job behaves."""

    logs: list[str] = field(default_factory=lambda: ["hello from the job"])
    polls: int = 3  # inspections before the job reaches `final_stage`
    final_stage: str = "COMPLETED"
    hold: bool = False  # keep running (and the log stream open) until cancelled
    drop_after: int = 0  # cut the first log stream after this many lines (0: never)
    reconnect_status: int = 0  # answer the second log request with this HTTP status (0: serve it)
    garble_after: int = 0  # end the first log stream after this many lines with bytes that do not decode
    # (gzip, then garbage): the Hub client ends such a stream quietly, as if it were over


@dataclass
class FakeJob:
    """A job and its scripted behaviour."""

    info: dict[str, Any]
    plan: Plan
    polls: int = 0
    streams: int = 0  # log streams opened
    stamps: list[str] = field(default_factory=list)  # each log line's timestamp, fixed at creation

    def finish(self, stage: str) -> None:
        if self.info["status"]["stage"] not in TERMINAL:
            self.info["status"]["stage"] = stage
            self.info["finishedAt"] = now_iso()


class FakeJobsHub:
    """A ThreadingHTTPServer on 127.0.0.1 in a background thread."""

    def __init__(
        self, user: str = "alice", token: str = "hf_test_secret_token", orgs: tuple[str, ...] = ()
    ) -> None:
        self.user, self.token = user, token
        self.orgs = orgs  # organizations the user belongs to: their namespaces are served too
        self.requests: list[Recorded] = []
        self.jobs: dict[str, FakeJob] = {}
        self.scheduled: dict[str, dict[str, Any]] = {}
        self.plan = Plan()
        self.hardware: dict[str, float] = dict(HOURLY_USD)  # what GET /api/jobs/hardware serves
        self.unit = "minute"  # the unitLabel it prices them in
        self.failures: list[tuple[str, re.Pattern[str], int, str]] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self._ids = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.hub = self  # type: ignore[attr-defined]
        self._thread = serve_in_background(self._httpd, "fake-jobs-hub")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def fail(self, method: str, path_pattern: str, status: int, times: int = 1, message: str = "") -> None:
        """Answer the next `times` matching requests with `status`."""
        for _ in range(times):
            self.failures.append(
                (method, re.compile(path_pattern), status, message or f"fake error {status}")
            )

    def take_failure(self, method: str, path: str) -> tuple[int, str] | None:
        with self.lock:
            for index, (want, pattern, status, message) in enumerate(self.failures):
                if want == method and pattern.search(path):
                    del self.failures[index]
                    return status, message
        return None

    def new_id(self) -> str:
        return f"{next(self._ids):024x}"

    def owner(self) -> dict[str, str]:
        return {"id": "0" * 24, "name": self.user, "type": "user"}

    def add_job(self, spec: dict[str, Any], plan: Plan | None = None) -> FakeJob:
        """Create a job from a job spec as `run_job` posts it."""
        info = {
            "id": self.new_id(),
            "createdAt": now_iso(),
            "dockerImage": spec.get("dockerImage"),
            "spaceId": spec.get("spaceId"),
            "command": spec.get("command"),
            "arguments": spec.get("arguments", []),
            "environment": spec.get("environment", {}),
            "secrets": {name: "" for name in spec.get("secrets") or {}},  # names only, like the Hub
            "flavor": spec.get("flavor"),
            "labels": spec.get("labels"),
            "status": {"stage": "RUNNING", "message": None},
            "owner": self.owner(),
        }
        job = FakeJob(info=info, plan=plan or self.plan)
        job.stamps = [now_iso() for _ in job.plan.logs]
        self.jobs[info["id"]] = job
        return job

    def add_scheduled(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a scheduled job from the body `create_scheduled_job` posts."""
        info = {
            "id": self.new_id(),
            "createdAt": now_iso(),
            "jobSpec": body["jobSpec"],
            "schedule": body["schedule"],
            "suspend": bool(body.get("suspend", False)),
            "concurrency": bool(body.get("concurrency", False)),
            "status": {"lastJob": None, "nextJobRunAt": now_iso()},
            "owner": self.owner(),
        }
        self.scheduled[info["id"]] = info
        return info

    def requests_to(self, method: str, path_pattern: str) -> list[Recorded]:
        """Recorded requests with this method whose path matches the pattern."""
        pattern = re.compile(path_pattern)
        return [r for r in list(self.requests) if r.method == method and pattern.search(r.path)]

    def wait_for(self, method: str, path_pattern: str, timeout: float = 5.0) -> Recorded:
        """Block until a matching request has arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.requests_to(method, path_pattern):
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no {method} {path_pattern} within {timeout}s; got {self.requests}")

    def close(self) -> None:
        self.closing.set()
        stop_serving(self._httpd)

    def __enter__(self) -> FakeJobsHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    @property
    def hub(self) -> FakeJobsHub:
        return self.server.hub  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.hub.requests.append(Recorded(method, parts.path, parts.query, body, dict(self.headers)))
        if self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            return self._json(401, {"error": "Invalid credentials in Authorization header"})
        if failure := self.hub.take_failure(method, parts.path):
            return self._json(failure[0], {"error": failure[1]})
        self._route(method, parts.path, body)

    def _route(self, method: str, path: str, body: Any) -> None:
        hub = self.hub
        ns = "(?:" + "|".join(re.escape(name) for name in (hub.user, *hub.orgs)) + ")"
        if method == "GET" and path == "/api/whoami-v2":
            orgs = [{"type": "org", "name": org} for org in hub.orgs]
            return self._json(
                200, {"type": "user", "name": hub.user, "orgs": orgs, "auth": {"type": "access_token"}}
            )
        if method == "GET" and path == "/api/jobs/hardware":
            return self._json(
                200, [hardware(name, hourly, hub.unit) for name, hourly in hub.hardware.items()]
            )
        if match := re.fullmatch(rf"/api/jobs/{ns}(?:/(\w+)(?:/(logs|cancel))?)?", path):
            return self._jobs(method, match.group(1), match.group(2), body)
        if match := re.fullmatch(rf"/api/scheduled-jobs/{ns}(?:/(\w+)(?:/(suspend|resume))?)?", path):
            return self._scheduled(method, match.group(1), match.group(2), body)
        self._json(404, {"error": f"no route {method} {path}"})

    def _jobs(self, method: str, job_id: str | None, action: str | None, body: Any) -> None:
        hub = self.hub
        if job_id is None:
            if method == "POST":
                return self._json(200, hub.add_job(body).info)
            return self._json(200, [job.info for job in hub.jobs.values()])
        job = hub.jobs.get(job_id)
        if job is None:
            return self._json(404, {"error": f"Job {job_id} not found"})
        if action == "cancel" and method == "POST":
            job.finish("CANCELED")
            return self._json(200, {})
        if action == "logs":
            return self._logs(job)
        job.polls += 1
        if not job.plan.hold and job.polls >= job.plan.polls:
            job.finish(job.plan.final_stage)
        self._json(200, job.info)

    def _logs(self, job: FakeJob) -> None:
        job.streams += 1
        if job.streams == 2 and job.plan.reconnect_status:
            return self._json(job.plan.reconnect_status, {"error": "logs unavailable"})
        drop = job.plan.drop_after if job.streams == 1 else 0
        garble = job.plan.garble_after if job.streams == 1 else 0
        zipper = zlib.compressobj(wbits=31)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if garble:
            self.send_header("Content-Encoding", "gzip")
        if drop:  # promise more than is sent, then hang up: the client sees a broken stream
            self.send_header("Content-Length", "100000000")
        self.end_headers()
        try:
            for index, (line, stamp) in enumerate(zip(job.plan.logs, job.stamps, strict=True)):
                if (drop and index == drop) or (garble and index == garble):
                    self.wfile.write(b"\xff not gzip \xff" * 64 if garble else b"")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                event = f"data: {json.dumps({'timestamp': stamp, 'data': line})}\n\n".encode()
                if garble:
                    event = zipper.compress(event) + zipper.flush(zlib.Z_SYNC_FLUSH)
                self.wfile.write(event)
                self.wfile.flush()
            while (
                job.plan.hold
                and job.info["status"]["stage"] not in TERMINAL
                and not self.hub.closing.is_set()
            ):
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client went away
            return
        if not job.plan.hold:
            job.finish(job.plan.final_stage)  # the job exits once it has printed its logs

    def _scheduled(self, method: str, job_id: str | None, action: str | None, body: Any) -> None:
        hub = self.hub
        if job_id is None:
            if method == "POST":
                return self._json(200, hub.add_scheduled(body))
            return self._json(200, list(hub.scheduled.values()))
        info = hub.scheduled.get(job_id)
        if info is None:
            return self._json(404, {"error": f"Scheduled job {job_id} not found"})
        if method == "DELETE":
            del hub.scheduled[job_id]
            return self._json(200, {})
        if action:
            info["suspend"] = action == "suspend"
            return self._json(200, {})
        self._json(200, info)

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
