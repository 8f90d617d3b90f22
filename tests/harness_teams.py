"""Machines on one Postgres for the teams tests: two homes and working directories sharing a database."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.fakes.llm_server import ScriptedLLMServer
from tests.harness_cli import Workspace


def two_machines(root: Path, llm_server: ScriptedLLMServer, url: str) -> tuple[Workspace, Workspace]:
    """Machines A and B: their own ML_INTERN_HOMEs and working directories, the database at `url`."""
    pair = (Workspace.create(root / "a", llm_server.url), Workspace.create(root / "b", llm_server.url))
    for machine in pair:
        machine.env["ML_INTERN_DATABASE_URL"] = url
    return pair


def query(url: str, sql: str, *params: object) -> list[tuple]:
    """The rows of `sql` (none for a statement that returns none)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []
