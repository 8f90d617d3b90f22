"""Undo: rewind a thread to before its last N user turns and put back the files those turns changed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from langchain_core.messages import BaseMessage

from ml_intern.errors import UserError
from ml_intern.session.changes import legacy_changed_paths
from ml_intern.session.effects import remote_effects
from ml_intern.session.journal import CallRow, overlapping, turn_calls
from ml_intern.session.restore import FileRewind
from ml_intern.session.rewind import TurnStart, find_rewind
from ml_intern.session.threads import ThreadStore, thread_config
from ml_intern.session.trash import Trash, prune
from ml_intern.session.undo_report import UndoReport, _clip
from ml_intern.session.workspace import WorkspaceSnapshots
from ml_intern.tools.base import Runtime


class UndoSession(Protocol):
    """What undo needs of a session (ml_intern.session.session.Session has it)."""

    app: Any  # the compiled graph, with its checkpointer
    threads: ThreadStore  # the thread table
    snapshots: WorkspaceSnapshots | None  # None: the session takes no workspace snapshots


OLDER_VERSION = (
    "recorded by an older ml-intern, which cannot tell your changes from the agent's: left as it is"
)


@dataclass(frozen=True)
class Owner:
    """The machine and home (home_id.py) whose workdir and blob store a recorded call needs."""

    host: str  # "": recorded before hosts were (taken as this machine's)
    home_id: str  # "": recorded before home ids were (the host alone decides)

    def refusal(self, recorded: Owner) -> str | None:
        """Why this home (`self`) cannot undo what `recorded` recorded, or None when it can."""
        if recorded.home_id == self.home_id or (not recorded.home_id and recorded.host in ("", self.host)):
            return None
        if recorded.host == self.host:
            return f"changed in another ML_INTERN_HOME on {recorded.host}: undo cannot put it back from here"
        return f"changed on {recorded.host or 'another machine'}: undo cannot put it back from here"


class NothingToUndo(UserError):
    """The thread has no user turn to rewind."""


async def rewind_workspace(
    snapshots: WorkspaceSnapshots | None, thread_id: str, starts: list[TurnStart]
) -> FileRewind:
    """Undo the file changes the recorded tool calls of the turns in `starts` (newest first) made."""
    if snapshots is None:
        rewind = FileRewind()
        rewind.refused["(working directory)"] = "this session takes no workspace snapshots"
        return rewind
    cap = snapshots.max_file_bytes
    rewind = FileRewind(cap=cap, trash=Trash(trash_root(snapshots), thread_id, cap), store=snapshots.store)
    plans: list[tuple[CallRow, dict[str, str]]] = []
    here = Owner(socket.gethostname(), await snapshots.identity())
    for start in starts:
        label = f"(files of: {_clip(start.prompt, 40)})"
        turn = await snapshots.turn_owner(thread_id, start.base)
        if turn is None:
            await list_unrecorded(snapshots, thread_id, start.base, label, rewind)
            continue
        for row in await turn_calls(snapshots.conn, thread_id, start.base):
            if row.changes is None:
                rewind.refused[f"{label} call {row.seq}"] = "what that call changed was not recorded"
                continue
            owner = Owner(row.host or turn[0], row.home_id or (turn[1] if not row.host else ""))
            if why := here.refusal(owner):  # its workdir and copies are in another home
                for path in sorted({change[0] for change in row.changes}):
                    rewind.refused.setdefault(path, why)
                continue
            if not plans:
                rewind.workdir = Path(row.workdir)
            if Path(row.workdir) != rewind.workdir:
                rewind.refused[f"{label} call {row.seq}"] = f"ran in another working directory, {row.workdir}"
                continue
            plans.append((row, await concurrent_paths(snapshots, row)))

    def run() -> None:
        for call_row, others in plans:
            rewind.plan_call(call_row, others)
        rewind.apply(snapshots.store)

    await asyncio.to_thread(run)
    return rewind


def trash_root(snapshots: WorkspaceSnapshots) -> Path:
    """ML_INTERN_HOME/undo-trash: where undo moves what it removes or replaces."""
    return snapshots.home / "undo-trash"


async def prune_trash(snapshots: WorkspaceSnapshots | None) -> None:
    """Delete trash folders older than KEEP_DAYS, off the event loop; housekeeping never fails an undo."""
    if snapshots is not None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(prune, trash_root(snapshots))


async def concurrent_paths(snapshots: WorkspaceSnapshots, row: CallRow) -> dict[str, str]:
    """Paths another thread's calls also changed while `row`'s calls ran -> that thread."""
    others = await overlapping(snapshots.conn, row.thread_id, row.workdir, row.started_at, row.ended_at or 0)
    return {change[0]: other.thread_id for other in others for change in other.changes or []}


async def list_unrecorded(
    snapshots: WorkspaceSnapshots, thread_id: str, base: str, label: str, rewind: FileRewind
) -> None:
    """A turn the journal did not record: what an older version's whole-turn snapshots saw, listed only."""
    turn = await snapshots.turn(thread_id, base)
    if turn is None or turn.start is None or turn.end is None:
        rewind.refused[label] = "no record of what that turn changed"
        return
    for rel in sorted(legacy_changed_paths(turn.start, turn.end)):
        rewind.refused.setdefault(rel, OLDER_VERSION)


async def forget_undone(
    snapshots: WorkspaceSnapshots | None, thread_id: str, starts: list[TurnStart], thread_deleted: bool
) -> None:
    """Drop the undone turns' snapshots (all the thread's once it is deleted) and prune their blobs."""
    if snapshots is None:
        return
    if thread_deleted:
        await snapshots.forget_thread(thread_id)
    else:
        await snapshots.forget(thread_id, [start.base for start in starts])
    with contextlib.suppress(Exception):  # housekeeping: what is left now goes at the next prune
        await snapshots.prune()


def count_removed(before: list[BaseMessage], after: list[BaseMessage]) -> int:
    """Messages of `before` that are not in `after`."""

    def key(m: BaseMessage) -> tuple:
        return (m.type, m.id, getattr(m, "tool_call_id", None), str(m.content))

    left = Counter(key(m) for m in after)
    removed = 0
    for message in before:
        if left[key(message)]:
            left[key(message)] -= 1
        else:
            removed += 1
    return removed


async def update_thread_row(
    threads: ThreadStore, thread_id: str, undone: int, values: dict[str, Any]
) -> None:
    """Turn count, stop reason and usage totals as they were before the undone turns."""
    async with threads.conn.execute(
        "SELECT turns FROM ml_intern_threads WHERE thread_id = ?", (thread_id,)
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return
    turns = max(0, row[0] - undone)
    await threads.set_turns(thread_id, turns)
    await threads.end_turn(thread_id, values.get("stop_reason"), values.get("usage") or {})
    if turns == 0:  # the title was the first prompt, now undone: the next turn names the thread again
        await threads.conn.execute(
            "UPDATE ml_intern_threads SET title = '' WHERE thread_id = ?", (thread_id,)
        )
        await threads.conn.commit()


async def thread_runtime(threads: ThreadStore, thread_id: str) -> Runtime:
    """Where the thread's tools ran (its row's `tool_runtime`; "local" for a thread with no row)."""
    async with threads.conn.execute(
        "SELECT tool_runtime FROM ml_intern_threads WHERE thread_id = ?", (thread_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return "sandbox" if row is not None and row[0] == "sandbox" else "local"


async def undo_turns(session: UndoSession, thread_id: str, n: int = 1) -> UndoReport:
    """Rewind `thread_id` to before its last `n` user turns and put back the files those turns changed.

    Once started it runs to the end even if its caller is cancelled (Ctrl-C), and returns its report: files
    moved aside with the conversation left as it was would make the next undo refuse them as changed since,
    and only the report says where they went."""
    work = asyncio.ensure_future(_undo_turns(session, thread_id, n))
    cancels = 0
    while not work.done():
        try:
            await asyncio.wait([work])
        except asyncio.CancelledError:
            cancels += 1
    current = asyncio.current_task()
    for _ in range(cancels if current is not None else 0):
        current.uncancel()
    return work.result()


async def _undo_turns(session: UndoSession, thread_id: str, n: int) -> UndoReport:
    if n < 1:
        raise UserError(f"the number of turns to undo must be at least 1, not {n}")
    await prune_trash(session.snapshots)
    app = session.app
    rewind = await find_rewind(app.checkpointer, thread_id, n)
    if not rewind.starts:
        raise NothingToUndo(f"nothing to undo in thread {thread_id}")
    before = (await app.aget_state(thread_config(thread_id))).values.get("messages", [])
    runtime = await thread_runtime(session.threads, thread_id)  # sandbox changes are listed, not put back
    target = (await app.aget_state(rewind.target)).values if rewind.target else {}
    files = await rewind_workspace(session.snapshots, thread_id, rewind.starts)
    if rewind.target:  # the new head: a copy of the checkpoint before the turns, on the same parent
        await app.aupdate_state(rewind.target, None, as_node="__copy__")
    else:  # undoing the first turn: the thread is empty again
        await app.checkpointer.adelete_thread(thread_id)
    await update_thread_row(session.threads, thread_id, len(rewind.starts), target)
    trash = files.trash
    await forget_undone(session.snapshots, thread_id, rewind.starts, thread_deleted=not rewind.target)
    return UndoReport(
        thread_id=thread_id,
        turns_undone=len(rewind.starts),
        messages_removed=count_removed(before, target.get("messages", [])),
        restored=sorted(files.restored),
        removed=sorted(files.removed),
        not_restored=sorted(files.refused.items()),
        remote_effects=remote_effects(rewind.written, runtime),
        prompts=[start.prompt for start in reversed(rewind.starts)],
        kept_aside=str(trash.folder) if trash and trash.kept else "",
        kept=sorted(trash.kept) if trash else [],
    )
