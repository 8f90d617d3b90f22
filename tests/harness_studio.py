"""`langgraph dev` for the Studio tests: the app (langgraph.json and the package) copied to a directory of
its own, served offline on a free loopback port, stopped with its process group, its log shown on failure."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import NETGUARD_DIR, REPO_ROOT

LANGGRAPH = Path(sys.executable).parent / "langgraph"  # installed by the dev extras (langgraph-cli[inmem])
START_TIMEOUT_S = 90
OFFLINE_ENVIRONMENT = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # the CLI's usage report
    "LANGGRAPH_NO_VERSION_CHECK": "true",  # the server's PyPI version check
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}


@dataclass
class DevServer:
    url: str
    log: Path
    process: subprocess.Popen | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the server's whole process group (the CLI and its uvicorn workers)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return port if port != 2024 else free_port()


def app_copy(root: Path) -> Path:
    """langgraph.json and the package in a directory of their own: the server's files stay out of the repo."""
    app = root / "app"
    app.mkdir()
    shutil.copy(REPO_ROOT / "langgraph.json", app)
    shutil.copytree(REPO_ROOT / "ml_intern", app / "ml_intern", ignore=shutil.ignore_patterns("__pycache__"))
    return app


def wait_until_ok(server: DevServer, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode}:\n{server.log_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/ok", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"langgraph dev did not answer /ok within {START_TIMEOUT_S} s:\n{server.log_text()}")


@contextmanager
def dev_server_running(root: Path, env: dict[str, str]) -> Iterator[DevServer]:
    """`langgraph dev` on a copy of the app under `root`, with `env` (offline, the network guard on the path).
    Plain `langgraph dev`: it refuses blocking calls on its event loop (blockbuster), as a deployment does."""
    if not LANGGRAPH.exists():
        pytest.skip("langgraph-cli[inmem] is not installed")
    app = app_copy(root)
    port = free_port()
    server = DevServer(f"http://127.0.0.1:{port}", root / "langgraph-dev.log")
    # the guard, and the app copy's package rather than the repo's
    env = {**env, **OFFLINE_ENVIRONMENT, "PYTHONPATH": str(NETGUARD_DIR)}
    command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--port", str(port)]
    with server.log.open("w") as log:
        server.process = subprocess.Popen(
            command, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_ok(server, server.process)
        yield server
    except BaseException:
        print(server.log_text())
        raise
    finally:
        server.stop()
    assert "network guard" not in server.log_text(), server.log_text()
