"""`ml-intern` processes in an isolated home against a scripted model server, and readers of what they saved
(threads, transcripts, the steps' log), as a fresh process sees them."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AnyMessage, ToolMessage

from ml_intern.graph.context import RunContext
from ml_intern.paths import database_path
from ml_intern.services import build_services
from ml_intern.session.runner import new_turn
from ml_intern.session.session import open_session
from tests.fakes.chat_model import ScriptedChatModel
from tests.harness import Sandbox, child_python_path, home_environment, installed_cli, is_dropped_variable

MODEL = "vllm/scripted"  # litellm's hosted_vllm provider, served at VLLM_BASE_URL: no key, no hidden retries
QUICK_RETRIES = {"attempts": 2, "base_delay": 0.05, "max_delay": 0.5}


@dataclass
class Workspace:
    """Temp dirs and the environment of `ml-intern` processes; several workspaces may share one home."""

    root: Path  # parent of HOME, the working directory and the config file
    ml_intern_home: Path  # ML_INTERN_HOME
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, root: Path, llm_url: str, config: dict[str, Any] | None = None, home: Path | None = None
    ) -> Workspace:
        """Dirs under `root` (ML_INTERN_HOME too unless `home`), a config file (quick retries), the env."""
        ws = cls(root, home or root / "ml-intern-home")
        for path in (ws.home, ws.ml_intern_home, ws.workdir):
            path.mkdir(parents=True, exist_ok=True)
        config_file = root / "config.json"
        config_file.write_text(json.dumps(config or {"retries": QUICK_RETRIES}))
        ws.env = {
            **{k: v for k, v in os.environ.items() if not is_dropped_variable(k)},
            **home_environment(ws.home, ws.ml_intern_home),
            "VLLM_BASE_URL": llm_url,
            "ML_INTERN_CONFIG": str(config_file),
            "PYTHONPATH": child_python_path(),
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        return ws

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def database(self) -> Path:
        return self.ml_intern_home / "checkpoints.sqlite"

    def run(self, *args: str, stdin: str = "", timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """`ml-intern ARGS` to completion, in the workdir."""
        return subprocess.run(
            [str(installed_cli()), *args], env=self.env, cwd=self.workdir, input=stdin,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`ml-intern ARGS` in the background (stdin closed, output captured)."""
        return subprocess.Popen(
            [str(installed_cli()), *args], env=self.env, cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def thread_rows(self) -> list[dict[str, Any]]:
        return read_thread_rows(self.database)

    async def messages(self, thread_id: str) -> list[AnyMessage]:
        """A thread's saved transcript, as a fresh process loads it."""
        async with open_session(self.database) as session:
            return await session.messages(thread_id)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ml-intern: error:")]


def json_events(stdout: str) -> list[dict[str, Any]]:
    """The stream-json events; fails on any line that is not a JSON object."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# ---- what a run saved -------------------------------------------------------------------------------------


def read_thread_rows(database: Path) -> list[dict[str, Any]]:
    """Every `ml_intern_threads` row, oldest first, read with plain sqlite3."""
    with closing(sqlite3.connect(database)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM ml_intern_threads ORDER BY created_at")]


def thread_rows(sandbox: Sandbox) -> list[dict[str, Any]]:
    return read_thread_rows(sandbox.ml_intern_home / "checkpoints.sqlite")


async def saved_messages(sandbox: Sandbox, thread_id: str) -> list[Any]:
    """A thread's transcript in the sandbox's database, as a fresh process loads it."""
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        return await session.messages(thread_id)


def only_thread(workspace: Workspace) -> str:
    with closing(sqlite3.connect(workspace.database)) as conn:
        [(thread_id,)] = conn.execute("SELECT thread_id FROM ml_intern_threads").fetchall()
    return thread_id


def saved_results(workspace: Workspace, thread_id: str) -> list[tuple[str, str]]:
    """(call id, content) of the thread's tool results, read as a fresh process would."""
    messages = asyncio.run(workspace.messages(thread_id))
    return [(m.tool_call_id, str(m.content)) for m in messages if isinstance(m, ToolMessage)]


def read_log(workspace: Workspace) -> list[str]:
    """The lines the steps of a `CountingServer` run appended to `log` in the workdir."""
    log = workspace.workdir / "log"
    return log.read_text().split() if log.exists() else []


def database_check(database: Path) -> tuple[str, str]:
    """(PRAGMA integrity_check, journal mode) of a database file."""
    with closing(sqlite3.connect(database)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return integrity, conn.execute("PRAGMA journal_mode").fetchone()[0]


async def seed_thread(thread_id: str, prompt: str, answers: list[Any], max_iterations: int = 300) -> Any:
    """Run one turn in this process (real tools, scripted model) on the database the CLI will use."""
    model = ScriptedChatModel(answers)
    services = build_services(
        model=MODEL,
        workdir=Path.cwd(),
        tool_names=None,
        stream=False,
        environ=dict(os.environ),
        config=None,
        chat_model=model,
    )
    ctx = RunContext(
        model=MODEL,
        workdir=str(Path.cwd()),
        approval="auto",
        max_iterations=max_iterations,
        services=services,
    )
    async with open_session(database_path(os.environ)) as session:
        return await session.turn(thread_id, new_turn(prompt), ctx, lambda event: None, title=prompt)
