"""`ml-intern db copy`: every thread of one database into another (a SQLite home into a shared Postgres).

Checkpoints go through the savers' own API (oldest first, each on its parent, with its pending writes), so
resume, undo and export work on the target as on the source; our rows (threads, undo turns and calls) are
copied column by column. Snapshot blobs are files in ML_INTERN_HOME: they stay where they are."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ml_intern.errors import UserError
from ml_intern.session.migrations import columns

# Our tables with a row (or rows) per thread, in the order they are copied: the thread row last, after the
# checkpoints and undo rows, so that it marks a thread copied whole (`on_target`).
THREAD_TABLES = ("ml_intern_undo_turns", "ml_intern_undo_calls", "ml_intern_snapshots", "ml_intern_threads")
HOST_TABLES = ("ml_intern_threads", "ml_intern_undo_turns")  # a `host` column: "" means this machine


@dataclass
class Copied:
    """What a copy did."""

    threads: list[str] = field(default_factory=list)  # copied thread ids
    skipped: list[str] = field(default_factory=list)  # already on the target, left as they are there
    restarted: list[str] = field(default_factory=list)  # partly copied by a copy that stopped: copied again
    checkpoints: int = 0
    writes: int = 0  # pending writes of those checkpoints
    rows: int = 0  # rows of our own tables


class ThreadsExist(UserError):
    """Threads of the source are on the target already (copying them again would mix two histories)."""


async def thread_ids(db: Any) -> list[str]:
    """Every thread of the database: those with checkpoints and those with a row, oldest row first."""
    async with db.execute("SELECT thread_id FROM ml_intern_threads ORDER BY created_at") as cursor:
        ids = [row[0] for row in await cursor.fetchall()]
    async with db.execute("SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id") as cursor:
        return ids + sorted({row[0] for row in await cursor.fetchall()} - set(ids))


async def has_row(db: Any, thread_id: str) -> bool:
    async with db.execute("SELECT 1 FROM ml_intern_threads WHERE thread_id = ?", (thread_id,)) as cursor:
        return await cursor.fetchone() is not None


async def checkpoint_ids(db: Any, thread_id: str) -> set[str]:
    async with db.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ?", (thread_id,)
    ) as cursor:
        return {row[0] for row in await cursor.fetchall()}


async def on_target(source: Any, target: Any, thread_id: str) -> str:
    """How the target has the thread: "absent"; "present" (the source's newest checkpoint and the thread row:
    copied whole, perhaps gone on there since); "partial" (only checkpoints the source has: what a copy that
    stopped midway left, or an older copy); "other" (checkpoints the source lacks: a history of its own)."""
    ours, theirs = await checkpoint_ids(source.db, thread_id), await checkpoint_ids(target.db, thread_id)
    row_there = await has_row(target.db, thread_id)
    if not theirs and not row_there:
        return "absent"
    newest = max(ours, default=None)  # uuid6 ids: the newest is the greatest, the last a copy writes
    has_newest = newest is None or newest in theirs
    if has_newest and (row_there or not await has_row(source.db, thread_id)):
        return "present"
    return "partial" if theirs <= ours else "other"


async def copy_checkpoints(source: Any, target: Any, thread_id: str) -> tuple[int, int]:
    """The thread's checkpoints (every namespace) with their pending writes, oldest first; their counts."""
    found = [t async for t in source.alist({"configurable": {"thread_id": thread_id}})]
    found.sort(key=lambda t: t.checkpoint["id"])  # uuid6 ids: a parent is older than its children
    writes = 0
    for item in found:
        configurable = {"thread_id": thread_id, "checkpoint_ns": item.config["configurable"]["checkpoint_ns"]}
        if item.parent_config:
            configurable["checkpoint_id"] = item.parent_config["configurable"]["checkpoint_id"]
        stored = await target.aput(
            {"configurable": configurable},
            item.checkpoint,
            item.metadata,
            item.checkpoint["channel_versions"],  # every channel: the blobs a fresh database lacks
        )
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in item.pending_writes or []:
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, task_writes in by_task.items():
            await target.aput_writes(stored, task_writes, task_id)
            writes += len(task_writes)
    return len(found), writes


async def copy_rows(source: Any, target: Any, thread_id: str, host: str) -> int:
    """The thread's rows of our tables (the columns both databases have); an empty host becomes `host`."""
    copied = 0
    for table in THREAD_TABLES:
        theirs = set(await columns(target, table))
        shared = [name for name in await columns(source, table) if name in theirs]
        if not shared:
            continue
        async with source.execute(
            f"SELECT {', '.join(shared)} FROM {table} WHERE thread_id = ?", (thread_id,)
        ) as cursor:
            rows = [list(row) for row in await cursor.fetchall()]
        if not rows:
            continue
        names = list(shared)
        if table in HOST_TABLES and "host" in theirs:
            if "host" not in names:
                names.append("host")
                rows = [[*row, ""] for row in rows]
            at = names.index("host")
            rows = [[*row[:at], row[at] or host, *row[at + 1 :]] for row in rows]
        marks = ", ".join("?" for _ in names)
        await target.executemany(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows
        )
        copied += len(rows)
    await target.commit()
    return copied


async def forget_partial(target: Any, thread_id: str) -> None:
    """Remove what a failed copy of the thread left on the target, so that a new copy starts clean."""
    await target.saver.adelete_thread(thread_id)
    for table in THREAD_TABLES:
        await target.db.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
    await target.db.commit()


async def copy_threads(
    source: Any,
    target: Any,
    skip_existing: bool,
    host: str,
    on_thread: Callable[[str], None] = lambda thread_id: None,
) -> Copied:
    """Copy every thread of `source` (a Storage) to `target`; refused before anything is written when some
    are on the target already, unless `skip_existing`."""
    done = Copied()
    ids = await thread_ids(source.db)
    found = {thread_id: await on_target(source, target, thread_id) for thread_id in ids}
    present = [thread_id for thread_id in ids if found[thread_id] in ("present", "other")]
    if present and not skip_existing:
        some = ", ".join(present[:3]) + (", …" if len(present) > 3 else "")
        raise ThreadsExist(
            f"{len(present)} of the {len(ids)} threads are in {target.where} already ({some}):"
            " nothing copied; --skip-existing copies the others"
        )
    done.skipped = present
    for thread_id in ids:
        if thread_id in present:
            continue
        if found[thread_id] == "partial":
            await forget_partial(target, thread_id)
            done.restarted.append(thread_id)
        try:
            checkpoints, writes = await copy_checkpoints(source.saver, target.saver, thread_id)
            done.rows += await copy_rows(source.db, target.db, thread_id, host)
        except BaseException:
            with contextlib.suppress(Exception):  # the target may be what failed: the first error is shown
                await forget_partial(target, thread_id)
            raise
        done.threads.append(thread_id)
        done.checkpoints += checkpoints
        done.writes += writes
        on_thread(thread_id)
    return done
