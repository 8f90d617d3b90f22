"""What `ml-intern threads`, `show`, `export` and `undo` print."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

from ml_intern.errors import UserError
from ml_intern.session.export import export_thread
from ml_intern.session.session import Session
from ml_intern.terminal.tables import threads_table, transcript_line
from ml_intern.terminal.text import inert, when


async def print_threads(session: Session, limit: int) -> None:
    rows = await session.list_threads(limit)
    if not rows:
        print('no threads yet: start one with ml-intern "PROMPT"')
        return
    Console(width=None if sys.stdout.isatty() else 200).print(threads_table(rows, when))  # pipes: full rows


async def print_transcript(session: Session, thread: str) -> None:
    row = await session.find_thread(thread)
    print(inert(f"thread {row.thread_id} · {row.model} · {row.workdir}"))  # rows anyone may write
    for message in await session.messages(row.thread_id):
        print(transcript_line(message))


async def write_export(session: Session, thread: str | None, fmt: str, output: Path | None) -> None:
    """The thread exported to `output`, or to stdout."""
    text = await export_thread(session, thread, fmt, environ=session.environ)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from None
    print(f"exported to {output}", file=sys.stderr)


async def print_undo(session: Session, thread: str | None, turns: int, output_format: str) -> None:
    """Undo `turns` user turns of a thread; the report as text, or as its `undo_complete` event."""
    if output_format != "text":  # json and stream-json alike: the one event
        session.on_event = lambda event: print(json.dumps(event, default=str))
    row = await session.find_thread(thread)
    report = await session.undo(row.thread_id, turns)
    if output_format == "text":
        print(inert("\n".join(report.lines())))  # hosts and paths from the (perhaps shared) database
