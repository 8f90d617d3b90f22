"""A real Postgres server for the tests: Debian's `postgresql` binaries, a throwaway cluster in a temp dir
(run as the `postgres` user when we are root: initdb refuses root), one fresh database per test."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import suppress
from dataclasses import dataclass

BINARIES = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "Postgres tests need Debian's postgresql package (apt-get install postgresql)"


def postgres_bin() -> str:
    """The newest installed Postgres bin directory (a RuntimeError naming the package when missing)."""
    found = sorted(glob.glob(BINARIES), key=lambda path: int(path.split("/")[-2]))
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)


@dataclass
class PostgresServer:
    """A running cluster: `url(db)` to connect, `create_database()` for a fresh one."""

    base: str  # the temp dir: data/, log, the unix socket
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        with suppress(OSError, subprocess.SubprocessError):
            pg_ctl = f"{postgres_bin()}/pg_ctl"
            _as_postgres([pg_ctl, "-D", f"{self.base}/data", "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb + pg_ctl start on a free port of 127.0.0.1 (fsync off: a test cluster), about a second."""
    binaries = postgres_bin()
    base = tempfile.mkdtemp(prefix="pg-")  # short: a unix socket path is limited to 107 bytes
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data = f"{base}/data"
    _as_postgres([
        f"{binaries}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
        "--no-sync", "--no-instructions",
    ])  # fmt: skip
    port = _free_port()
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c max_connections=300"
    )
    log = f"{base}/log"
    _as_postgres([f"{binaries}/pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "30", "start"])
    return PostgresServer(base, port)
