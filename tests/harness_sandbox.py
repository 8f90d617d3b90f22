"""The real sandbox server (ml_intern/tools/sandbox/server.py) as a process on 127.0.0.1, for the tests of the
sandbox client and tools: `with SandboxServer(tmp_path) as server:` gives its URL, token, root and pid."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from tests.harness import REPO_ROOT, is_running

SERVER_SCRIPT = REPO_ROOT / "ml_intern" / "tools" / "sandbox" / "server.py"
LISTENING = re.compile(r"listening on (http://\S+)")
START_SECONDS = 15.0


class SandboxServer:
    """server.py on 127.0.0.1 (a free port), its root `base/root`, its spill files under `base/spill`."""

    def __init__(self, base: Path, token: str | None = None) -> None:
        self.root, self.spill = base / "root", base / "spill"
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token or secrets.token_urlsafe(32)
        self.url = ""
        self.output: list[str] = []  # what the server printed (stdout and stderr)
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> SandboxServer:
        """Start the server and wait for its "listening on" line."""
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root.parent),
            "LANG": "C.UTF-8",
            "SANDBOX_API_TOKEN": self.token,
            "SANDBOX_SPILL_DIR": str(self.spill),
        }
        argv = [sys.executable, str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--root"]
        self.process = subprocess.Popen(
            [*argv, str(self.root)],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        found = threading.Event()
        threading.Thread(target=self._read_output, args=(found,), daemon=True).start()
        if not found.wait(START_SECONDS) or not self.url:
            self.close()
            raise RuntimeError(f"the sandbox server did not start: {''.join(self.output)[-2000:]}")
        return self

    def _read_output(self, found: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = LISTENING.search(line)
            if match and not self.url:
                self.url = match.group(1).rstrip("/")
                found.set()
        found.set()  # the server ended without saying where it listens

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and is_running(self.process.pid)

    def close(self) -> None:
        """Stop the commands it still runs (/api/kill), then the server."""
        if self.process is None:
            return
        if self.process.poll() is None and self.url:
            with contextlib.suppress(OSError):
                request = urllib.request.Request(
                    f"{self.url}/api/kill",
                    data=b"{}",
                    headers={
                        "X-Sandbox-Authorization": f"Bearer {self.token}",
                        "Content-Type": "application/json",
                    },
                )
                urllib.request.urlopen(request, timeout=5).close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
