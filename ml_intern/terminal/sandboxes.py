"""`ml-intern sandboxes`: list the user's sandbox Spaces, delete leftovers (those no live run here holds)."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ml_intern.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UserError
from ml_intern.terminal.text import inert, print_error

if TYPE_CHECKING:
    from ml_intern.tools.sandbox.listing import SpaceRow
    from ml_intern.tools.sandbox.spaces import SpaceOps

NO_TOKEN = "ml-intern sandboxes needs a Hugging Face token: run hf auth login or set HF_TOKEN"
NOBODY = "nobody"
UNKNOWN = "unknown"  # no readable RUN_VARIABLE: the machine that made it is not known


def main(names: list[str], delete: bool, everywhere: bool, verbose: bool, force: bool = False) -> int:
    """The command's exit code (0; 2 on a usage error; 1 when a deletion failed)."""
    if names and not delete:
        print_error(
            "names go with --delete: ml-intern sandboxes --delete NAME (without --delete it lists all)"
        )
        return EXIT_USAGE
    from ml_intern.terminal.cli_session import one_line_failures

    return one_line_failures(lambda: run(space_ops(verbose), names, delete, everywhere, force))


def space_ops(verbose: bool) -> SpaceOps:
    """The Hub calls for the user's token, the environment read as every command reads it (imports here:
    `ml-intern --help` stays fast)."""
    from ml_intern.model.credentials import adopt_saved_hf_token
    from ml_intern.paths import home_dir
    from ml_intern.secrets import register_secrets
    from ml_intern.session.start import prepare_process, read_config
    from ml_intern.tools.base import ToolEnv
    from ml_intern.tools.sandbox.spaces import SpaceOps

    prepare_process(os.environ, verbose)
    config, _ = read_config(Path.cwd(), os.environ)
    adopt_saved_hf_token(os.environ)
    if not os.environ.get("HF_TOKEN"):
        raise UserError(NO_TOKEN, EXIT_USAGE)
    register_secrets(os.environ)
    return SpaceOps(ToolEnv.from_environ(Path.cwd(), home_dir(os.environ), config, dict(os.environ)))


def run(ops: SpaceOps, names: list[str], delete: bool, everywhere: bool, force: bool = False) -> int:
    """List, or delete the named sandboxes (`force`: held ones too), or the leftovers."""
    from ml_intern.tools.sandbox.listing import list_sandboxes
    from ml_intern.tools.sandbox.spaces import SandboxFailed

    try:
        rows = list_sandboxes(ops)
    except SandboxFailed as exc:
        raise UserError(str(exc), EXIT_FAILURE) from None
    if not delete:
        print_table(rows)
        return EXIT_OK
    if names:
        return delete_named(ops, rows, names, force)
    return delete_leftovers(ops, rows, everywhere)


def holder(row: SpaceRow) -> str:
    """Who holds a sandbox: "pid N" (a live run here), another machine's name, "nobody" (its run is gone)."""
    here = socket.gethostname()
    if not row.host:
        return UNKNOWN
    if row.host != here:
        return row.host
    return f"pid {row.pid}" if row.pid is not None and pid_alive(row.pid, row.start) else NOBODY


def holders(rows: list[SpaceRow]) -> dict[SpaceRow, str]:
    """Each row's holder, asked once."""
    return {row: holder(row) for row in rows}


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether the process `pid` that started at `start` (None: unknown) runs on this machine: a zombie, or
    a process that started at another time (the pid was reused), counts as gone."""
    from ml_intern.tools.sandbox.spaces import process_start

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: the pid alone tells
    return state != "Z" and (start is None or process_start(pid) in (None, start))


def age(created_at: float | None, now: float) -> str:
    """How long ago: "45s", "12m", "3h", "2d"; "?" when unknown."""
    if created_at is None:
        return "?"
    seconds = max(0, int(now - created_at))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def print_table(rows: list[SpaceRow]) -> None:
    """The sandboxes as a table, and how to delete the leftovers among them."""
    if not rows:
        print("no sandboxes")
        return
    now, table, held = time.time(), Table(box=None, header_style="bold"), holders(rows)
    for column in ("NAME", "HARDWARE", "STAGE", "AGE", "THREAD", "HELD BY"):
        table.add_column(column, overflow="fold" if column == "NAME" else "ellipsis")
    for row in rows:
        cells = (row.space_id, row.hardware or "?", row.stage or "?", age(row.created_at, now),
                 row.thread or "?", held[row])  # fmt: skip
        table.add_row(*(Text(inert(cell)) for cell in cells))  # Hub text: no markup, no escapes
    Console(width=None if sys.stdout.isatty() else 200, highlight=False).print(table)
    leftovers = sum(held[row] == NOBODY for row in rows)
    if leftovers:
        print(f"{leftovers} left over by runs that ended: ml-intern sandboxes --delete removes them")


def delete_leftovers(ops: SpaceOps, rows: list[SpaceRow], everywhere: bool) -> int:
    """Delete every sandbox no live run here holds: made here, or (with --all) anywhere."""
    held = holders(rows)
    live = {row.space_id for row in rows if held[row].startswith("pid ")}
    doomed = [row for row in rows if row.space_id not in live and (everywhere or held[row] == NOBODY)]
    kept = [row for row in rows if row.space_id not in live and row not in doomed]
    if not doomed:
        print("no leftover sandboxes to delete")
    failed = sum(not delete_one(ops, row.space_id) for row in doomed)
    if kept:
        print(f"kept {len(kept)} made on other machines or by unknown runs: --delete --all removes them too")
    return EXIT_FAILURE if failed else EXIT_OK


def delete_named(ops: SpaceOps, rows: list[SpaceRow], names: list[str], force: bool = False) -> int:
    """Delete the named sandboxes; refuse a name that is no sandbox, and one a live run here holds unless
    `force` (a run that still holds it fails at its next sandbox call)."""
    from ml_intern.tools.sandbox.spaces import NAME_PREFIX

    by_name = {row.space_id: row for row in rows} | {row.space_id.split("/", 1)[1]: row for row in rows}
    failed = 0
    for name in dict.fromkeys(names):
        row = by_name.get(name)
        if row is None:
            if name.rsplit("/", 1)[-1].startswith(NAME_PREFIX):
                print_error(f"{name}: no such sandbox; ml-intern sandboxes lists them")
            else:
                print_error(f"{name} is not a sandbox: their names start with {NAME_PREFIX}")
            failed += 1
        elif (held := holder(row)).startswith("pid ") and not force:
            print_error(f"{row.space_id}: held by {held}: stop that run first (or add --force)")
            failed += 1
        else:
            failed += not delete_one(ops, row.space_id)
    return EXIT_FAILURE if failed else EXIT_OK


def delete_one(ops: SpaceOps, space_id: str) -> bool:
    """Delete one sandbox, saying so in one line."""
    from ml_intern.tools.sandbox.spaces import SandboxFailed

    try:
        deleted = ops.delete(space_id)
    except SandboxFailed as exc:
        print_error(f"{space_id}: {exc}")
        return False
    if deleted:
        print(f"deleted {space_id}")
    else:
        print_error(f"could not delete {space_id} (the Hub kept failing): try again later")
    return deleted
