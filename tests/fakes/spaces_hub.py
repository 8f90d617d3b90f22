"""FakeHub for sandbox Spaces: creation (with secrets and variables), runtime polls, info with the server's
`host`, deletion, listing and variables, every call recorded. The commit that brings `server.py` "builds"
the Space: the uploaded server runs on this machine (127.0.0.1), rooted in `root_of(space_id)`.

    with SpacesHub(token="hf_test") as hub:
        space = SpaceOps(env).create("cpu-basic", "thread-1", {}, None)
        hub.created[0]["sdk"] == "docker"; hub.url_of(space.space_id)  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.http_fake import Recorded, Reply, json_reply
from tests.fakes.hub_server import DATE, REPO, USER, FakeHub, FakeRepo

LISTENING = re.compile(r"listening on (http://[\w.\-\[\]:]+)")
START_SECONDS = 15.0  # how long a server may take to say where it listens


@dataclass
class FakeSpace:
    """What the fake knows of one Space beyond its repo."""

    space_id: str
    hardware: str
    secrets: dict[str, str]
    variables: dict[str, str]
    sleep_time: int | None
    created_at: str  # ISO time
    polls: int = 0  # runtime polls since the server commit
    process: subprocess.Popen | None = field(default=None, repr=False)
    host: str = ""  # the running server's URL
    output: list[str] = field(default_factory=list)  # what the server printed
    failed: str = ""  # why the build failed ("" when it did not)
    stage: str = ""  # a stage answered whatever happens (`add_space`), "" for none


class SpacesHub(FakeHub):
    """The Hub for sandbox Spaces.

    Options: `build_polls` (runtime polls answering BUILDING after the server commit, default 1), `fail_stage`
    (answered instead of RUNNING, e.g. "BUILD_ERROR"; no server is started), `delete_failures` (the first N
    deletes answer 500), `create_status` (create_repo answers this status, e.g. 402), `start_servers`
    (False: the server commit starts nothing and the Space stays BUILDING), `create_delay` and
    `delete_delay` (seconds the answer to create_repo is late, after the Space is made; seconds a delete
    waits before it acts: a slow or silent Hub, other requests going on meanwhile; stopping the fake ends
    the waits)."""

    def __init__(
        self,
        token: str = "hf_test",
        build_polls: int = 1,
        fail_stage: str | None = None,
        delete_failures: int = 0,
        create_status: int | None = None,
        start_servers: bool = True,
        create_delay: float = 0.0,
        delete_delay: float = 0.0,
    ) -> None:
        super().__init__(token)
        self.create_delay, self.delete_delay = create_delay, delete_delay
        self.stopping = threading.Event()  # set by stop(): the delays end
        self.build_polls, self.fail_stage, self.start_servers = build_polls, fail_stage, start_servers
        self.delete_failures, self.create_status = delete_failures, create_status
        self.created: list[dict[str, Any]] = []  # the create_repo JSON bodies, in order
        self.commits: dict[str, list[dict[str, bytes]]] = {}  # space id -> each commit's {file name: bytes}
        self.deleted: list[str] = []  # ids of deleted Spaces, in order
        self.runtime_polls: dict[str, int] = {}  # space id -> GET .../runtime count
        self.variables_reads: list[str] = []  # space ids whose variables were read, in order
        self.spaces: dict[str, FakeSpace] = {}  # the live Spaces
        self.tmp = Path(tempfile.mkdtemp(prefix="spaces-hub-"))
        self.route("GET", f"/api/(?P<type>space)s/{REPO}/runtime", self.runtime)
        self.route("GET", f"/api/(?P<type>space)s/{REPO}/variables", self.variables)
        self.route("DELETE", "/api/repos/delete", self.delete_repo)
        self.route("GET", f"/api/(?P<type>space)s/{REPO}/jwt", self.jwt)
        self.edge_tokens: list[str] = []  # the Space tokens `/jwt` gave out, in order

    # ---- what tests read -------------------------------------------------------------------------------

    def root_of(self, space_id: str) -> Path:
        """The directory a Space's server works in (its /app)."""
        return self.tmp / space_id.replace("/", "__") / "app"

    def token_of(self, space_id: str) -> str:
        """The SANDBOX_API_TOKEN secret the Space was created with."""
        return self.spaces[space_id].secrets["SANDBOX_API_TOKEN"]

    def url_of(self, space_id: str) -> str:
        """The running server's URL ("" before it runs)."""
        return self.spaces[space_id].host

    def process_of(self, space_id: str) -> subprocess.Popen | None:
        """The Space's server process (None before the server commit)."""
        return self.spaces[space_id].process

    def add_space(
        self, name: str, owner: str = USER, variables: dict[str, str] | None = None, stage: str = "SLEEPING"
    ) -> str:
        """A Space made by something else (no server): an old sandbox, or a Space of the user's own."""
        space_id = f"{owner}/{name}"
        self.spaces[space_id] = FakeSpace(space_id, "cpu-basic", {}, variables or {}, None, DATE, stage=stage)
        self.add_repo(space_id, "space", private=True, info=self.info_of(space_id))
        return space_id

    # ---- routes ----------------------------------------------------------------------------------------

    def dispatch(self, request: Recorded) -> Reply:
        """FakeHub's, with the delays waited outside its lock."""
        where = (request.method, request.path)
        if where == ("DELETE", "/api/repos/delete"):
            self.stopping.wait(self.delete_delay)
        reply = super().dispatch(request)
        if where == ("POST", "/api/repos/create"):
            self.stopping.wait(self.create_delay)
        return reply

    def jwt(self, request: Recorded) -> Reply:
        """A short-lived token for one Space (what a private Space's edge takes), for its owner only."""
        space_id = request.match.group("repo") if request.match else ""
        if not self.authorized(request) or space_id not in self.spaces:
            return json_reply(401, {"error": "Invalid credentials"})
        self.edge_tokens.append(token := f"jwt-{len(self.edge_tokens)}-{space_id.split('/')[-1]}")
        return json_reply(200, {"token": token, "accessToken": token})

    def create_repo(self, request: Recorded) -> Reply:
        body = request.json()
        if body.get("type") != "space":
            return super().create_repo(request)
        self.created.append(body)
        if self.create_status is not None and self.authorized(request):
            error = {"error": f"Cannot create the Space (fake {self.create_status})"}
            return json_reply(self.create_status, error)
        status, headers, payload = super().create_repo(request)
        if status != 200:
            return status, headers, payload
        space_id = f"{body.get('organization') or USER}/{body['name']}"
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.spaces[space_id] = FakeSpace(
            space_id,
            body.get("hardware") or "cpu-basic",
            {s["key"]: s["value"] for s in body.get("secrets") or []},
            {v["key"]: v["value"] for v in body.get("variables") or []},
            body.get("sleepTimeSeconds"),
            now,
        )
        self.repos[("space", space_id)].info = self.info_of(space_id)
        return status, headers, payload

    def info_of(self, space_id: str) -> dict[str, Any]:
        """The Space-only fields of /api/spaces/{id} (sdk, host once running, createdAt)."""
        space = self.spaces.get(space_id)
        info: dict[str, Any] = {"sdk": "docker", "subdomain": space_id.replace("/", "-").lower()}
        if space is not None:
            info |= {"createdAt": space.created_at, "runtime": self.runtime_of(space)}
            if space.host:
                info["host"] = space.host
        return info

    def repo_info(self, request: Recorded) -> Reply:
        if request.match["type"] == "space":
            repo = self.lookup(request)
            return json_reply(200, repo.payload() | self.info_of(repo.repo_id))
        return super().repo_info(request)

    def list_repos(self, request: Recorded) -> Reply:
        if request.match["type"] != "space":
            return super().list_repos(request)
        search, author = (request.arg("search") or "").lower(), request.arg("author")
        found = [
            repo
            for (kind, repo_id), repo in self.repos.items()
            if kind == "space"
            and search in repo_id.split("/")[-1].lower()
            and (author is None or repo_id.split("/")[0] == author)
            and (not repo.private or self.authorized(request))
        ]
        expand = request.query.get("expand", [])
        rows = []
        for repo in found:
            full = repo.payload() | self.info_of(repo.repo_id)
            keys = {"id", "_id", *expand} if expand else set(full) - {"runtime"}
            rows.append({key: value for key, value in full.items() if key in keys} | {"id": repo.repo_id})
        return json_reply(200, rows)

    def commit(self, request: Recorded) -> Reply:
        reply = super().commit(request)
        space_id = request.match["repo"] if request.match["type"] == "space" else ""
        if reply[0] != 200 or space_id not in self.spaces:
            return reply
        files = {line["value"]["path"]: self.repos[("space", space_id)].files[line["value"]["path"]]
                 for line in request.ndjson()[1:] if line["key"] == "file"}  # fmt: skip
        self.commits.setdefault(space_id, []).append(files)
        if "server.py" in files:
            self.build(self.spaces[space_id], files["server.py"])
        return reply

    def runtime_of(self, space: FakeSpace) -> dict[str, Any]:
        """The runtime JSON of /api/spaces/{id}/runtime (and of `expand=runtime`)."""
        if space.stage:
            stage = space.stage
        elif space.process is None and not space.failed and not space.host:
            stage = "BUILDING" if space.space_id in self.commits else "NO_APP_FILE"
        elif space.polls <= self.build_polls:
            stage = "BUILDING"
        else:
            stage = space.failed or "RUNNING"
        current = space.hardware if stage == "RUNNING" else None
        hardware = {"current": current, "requested": space.hardware}
        return {
            "stage": stage,
            "hardware": hardware,
            "gcTimeout": space.sleep_time,
            "replicas": {"current": 1},
        }

    def runtime(self, request: Recorded) -> Reply:
        self.lookup(request)
        space = self.spaces[request.match["repo"]]
        self.runtime_polls[space.space_id] = self.runtime_polls.get(space.space_id, 0) + 1
        space.polls += 1
        return json_reply(200, self.runtime_of(space))

    def variables(self, request: Recorded) -> Reply:
        self.lookup(request, write=True)
        space = self.spaces[request.match["repo"]]
        self.variables_reads.append(space.space_id)
        return json_reply(200, {k: {"value": v, "updatedAt": DATE} for k, v in space.variables.items()})

    def delete_repo(self, request: Recorded) -> Reply:
        if not self.authorized(request):
            return json_reply(401, {"error": "Invalid credentials in Authorization header"})
        if self.delete_failures > 0:
            self.delete_failures -= 1
            return json_reply(500, {"error": "Internal Error (fake)"})
        body = request.json()
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        repo: FakeRepo | None = self.repos.pop((body.get("type") or "model", repo_id), None)
        if repo is None:
            return json_reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        space = self.spaces.pop(repo_id, None)
        if space is not None:
            stop_server(space)
        self.deleted.append(repo_id)
        return json_reply(200, {})

    # ---- the "build": the uploaded server on this machine ----------------------------------------------

    def build(self, space: FakeSpace, server: bytes) -> None:
        """Start the uploaded server as the Space would, or fail the build as asked."""
        space.polls = 0
        if self.fail_stage:
            space.failed = self.fail_stage
            return
        if not self.start_servers:
            return
        stop_server(space)
        image = self.root_of(space.space_id).parent / "image"
        image.mkdir(parents=True, exist_ok=True)
        self.root_of(space.space_id).mkdir(exist_ok=True)
        (image / "server.py").write_bytes(server)
        root, spill = self.root_of(space.space_id), image.parent / "spill"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "LANG": "C.UTF-8"}
        env |= space.secrets | space.variables  # as a Space gets them: its environment
        env |= {"SANDBOX_ROOT": str(root), "SANDBOX_SPILL_DIR": str(spill), "PYTHONDONTWRITEBYTECODE": "1"}
        space.process = subprocess.Popen(
            [sys.executable, str(image / "server.py"), "--host", "127.0.0.1", "--port", "0"],
            env=env, cwd=image, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, text=True, errors="replace",
        )  # fmt: skip
        space.host = wait_for_address(space)
        if not space.host:
            stop_server(space)
            space.failed = "RUNTIME_ERROR"

    def stop(self) -> None:
        self.stopping.set()
        for space in list(self.spaces.values()):
            stop_server(space)
        super().stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> SpacesHub:
        self.start()
        return self


def wait_for_address(space: FakeSpace) -> str:
    """The URL the server says it listens on ("" if it exits or stays silent); its output kept draining."""
    found = threading.Event()
    address: list[str] = []

    def drain() -> None:
        assert space.process is not None and space.process.stdout is not None
        for line in space.process.stdout:
            space.output.append(line)
            match = LISTENING.search(line)
            if match and not address:
                address.append(match[1].rstrip("/"))
                found.set()
        found.set()  # exited

    threading.Thread(target=drain, name=f"server output {space.space_id}", daemon=True).start()
    found.wait(START_SECONDS)
    return address[0] if address else ""


def stop_server(space: FakeSpace) -> None:
    """Kill the Space's server and everything it started (its process group)."""
    process, space.process = space.process, None
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
