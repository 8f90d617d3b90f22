"""Undo: rewind a thread to before its last N user turns and put back the files those turns changed."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_messages

from ml_intern.errors import UserError
from ml_intern.graph.messages import is_user_turn
from ml_intern.session.workspace import (
    MAX_FILES,
    BlobStore,
    Entry,
    TurnSnapshots,
    changed_paths,
    file_state,
    same_content,
)

if TYPE_CHECKING:
    from ml_intern.session.session import Session

READ_ONLY = {  # operations of remote tools that change nothing; every other operation has a remote effect
    "hf_repo_files": {"list", "read"},
    "hf_repo_git": {"list refs", "list prs", "get pr"},
    "hf_jobs": {"ps", "logs", "inspect", "scheduled ps", "scheduled inspect"},
}
EFFECT_TARGET = ("repo_type", "repo_id", "path", "branch", "tag", "pr_num", "job_id", "scheduled_job_id")
URL = re.compile(r"https?://[^\s'\"<>]+")


class NothingToUndo(UserError):
    """The thread has no user turn to rewind."""


@dataclass
class UndoReport:
    """What an undo rewound and restored."""

    thread_id: str
    turns_undone: int  # user turns removed (guard and summary messages never count)
    messages_removed: int  # messages of the transcript that are gone
    restored: list[str] = field(default_factory=list)  # workdir-relative paths put back as they were
    removed: list[str] = field(default_factory=list)  # files (and empty dirs, ending in /) the turns created
    not_restored: list[tuple[str, str]] = field(default_factory=list)  # (path, why) left as they are
    remote_effects: list[str] = field(default_factory=list)  # side effects elsewhere that undo cannot reverse
    prompts: list[str] = field(default_factory=list)  # the undone user messages, oldest first

    def lines(self) -> list[str]:
        """Exactly what was rewound and restored, for printing."""
        plural = "s" if self.turns_undone != 1 else ""
        lines = [
            f"Undid {self.turns_undone} user turn{plural} of thread {self.thread_id}"
            f" ({self.messages_removed} messages removed)."
        ]
        lines += [f"  rewound: {_clip(prompt)}" for prompt in self.prompts]
        lines += [f"  restored: {path}" for path in self.restored]
        lines += [f"  removed: {path}" for path in self.removed]
        lines += [f"  not restored: {path} ({why})" for path, why in self.not_restored]
        if not (self.restored or self.removed or self.not_restored):
            lines.append("  no file in the working directory was changed by those turns")
        if self.remote_effects:
            lines.append("Not undone (remote side effects):")
            lines += [f"  {effect}" for effect in self.remote_effects]
        return lines

    def event(self) -> dict[str, Any]:
        """The `undo_complete` stream event."""
        fields = asdict(self)
        fields["not_restored"] = [list(pair) for pair in self.not_restored]
        return {"type": "undo_complete", **fields}


def _clip(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass
class TurnStart:
    """A checkpoint where a user turn began."""

    base: str  # id of the checkpoint the turn started from ('' for the thread's first turn)
    parent_config: dict[str, Any] | None  # that checkpoint's config: the state before the turn
    prompt: str  # what the user typed


@dataclass
class Rewind:
    """The undone stretch of a thread's parent chain."""

    starts: list[TurnStart]  # newest first
    written: list[BaseMessage]  # messages the undone turns wrote, oldest first (compacted ones included)

    @property
    def target(self) -> dict[str, Any] | None:
        return self.starts[-1].parent_config if self.starts else None


def user_prompt(tup: Any) -> str | None:
    """The user's message when checkpoint `tup` started a user turn, else None."""
    if tup.metadata.get("source") != "input":
        return None
    start = tup.checkpoint["channel_values"].get("__start__")
    messages = start.get("messages") if isinstance(start, dict) else None
    if not messages:
        return None
    typed = convert_to_messages(messages if isinstance(messages, list) else [messages])
    return next((m.text for m in typed if is_user_turn(m)), None)


def messages_written(tup: Any) -> list[BaseMessage]:
    """Messages appended by the tasks that ran from checkpoint `tup` (compaction's overwrites left out)."""
    values = [value for _, channel, value in tup.pending_writes or [] if channel == "messages"]
    found = [m for value in values for m in (value if isinstance(value, list) else [value])]
    return [m for m in found if isinstance(m, BaseMessage)]


async def find_rewind(saver: Any, thread_id: str, n: int) -> Rewind:
    """Walk the head's parent chain (never other branches) back to the start of the n-th last user turn."""
    tup = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    starts: list[TurnStart] = []
    batches: list[list[BaseMessage]] = []
    while tup is not None and len(starts) < n:
        batches.append(messages_written(tup))
        prompt = user_prompt(tup)
        if prompt is not None:
            parent = tup.parent_config
            base = parent["configurable"]["checkpoint_id"] if parent else ""
            starts.append(TurnStart(base, parent, prompt))
        tup = await saver.aget_tuple(tup.parent_config) if tup.parent_config else None
    return Rewind(starts, [message for batch in reversed(batches) for message in batch])


def remote_effects(messages: list[BaseMessage]) -> list[str]:
    """Hub uploads and deletions, repos, refs and PRs changed, jobs launched: with URLs from their results."""
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    calls = [call for m in messages if isinstance(m, AIMessage) for call in m.tool_calls]
    return [effect for call in calls if (effect := describe_effect(call, results.get(call["id"])))]


def describe_effect(call: dict[str, Any], result: ToolMessage | None) -> str | None:
    args = call.get("args") or {}
    operation = " ".join(str(args.get("operation", "")).lower().replace("_", " ").split())
    if call["name"] not in READ_ONLY or not operation or operation in READ_ONLY[call["name"]]:
        return None
    if result is not None and result.status == "error":
        return None
    shown = [
        call["name"],
        str(args["operation"]),
        *(str(args[key]) for key in EFFECT_TARGET if args.get(key)),
    ]
    what = " ".join(shown)
    if result is None:
        return f"{what} (no result was recorded: check whether it ran)"
    urls = list(dict.fromkeys(url.rstrip(".,;:)") for url in URL.findall(str(result.content))))
    return f"{what}: {' '.join(urls[:3])}" if urls else what


@dataclass
class FileRewind:
    """The file changes an undo makes, planned newest turn first, then applied."""

    planned: dict[Path, tuple[str, Entry | None]] = field(default_factory=dict)  # path -> (shown, put back)
    dirs: dict[Path, tuple[str, bool]] = field(default_factory=dict)  # dir -> (shown, must exist)
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # shown path -> why it was left alone

    def plan_turn(self, turn: TurnSnapshots, latest: bool, cap: int) -> None:
        """Rewind one turn's changes on top of what later turns' rewinds already planned."""
        start, end = turn.start, turn.end
        assert start is not None and end is not None
        if start.truncated or end.truncated:
            self.refused["(working directory)"] = f"over {MAX_FILES} files: only the first were snapshotted"
        for rel in sorted(changed_paths(start, end)):
            path = turn.workdir / rel
            if rel in self.refused:
                continue
            now = self.planned[path][1] if path in self.planned else file_state(path, cap)
            why = refusal(now, start.files.get(rel), end.files.get(rel), cap, path in self.planned)
            if why:
                self.refused[rel] = why
            else:
                self.planned[path] = (rel, start.files.get(rel))
        self.dirs.update({turn.workdir / d: (d, False) for d in end.dirs - start.dirs})
        self.dirs.update({turn.workdir / d: (d, True) for d in start.dirs - end.dirs})

    def apply(self, store: BlobStore) -> None:
        """Put files back, delete created ones, then fix directories (deepest first)."""
        for path, (rel, entry) in self.planned.items():
            try:
                now = file_state(path)
                if same_content(now, entry) and (entry is None or now is None or now[3] == entry[3]):
                    continue
                if entry is None:
                    path.unlink()
                    self.removed.append(rel)
                else:
                    write_back(path, store.get(entry[2] or ""), entry[3])
                    self.restored.append(rel)
            except OSError as exc:
                self.refused[rel] = f"could not be put back: {exc.strerror or exc}"
        for path, (rel, wanted) in sorted(self.dirs.items(), key=lambda item: -len(item[0].parts)):
            try:
                if wanted and not path.exists():
                    path.mkdir(parents=True)
                    self.restored.append(rel + "/")
                elif not wanted and remove_if_empty(path):
                    self.removed.append(rel + "/")
            except OSError as exc:
                self.refused[rel + "/"] = f"could not be put back: {exc.strerror or exc}"


def refusal(
    now: Entry | None, before: Entry | None, after: Entry | None, cap: int, partly: bool
) -> str | None:
    """Why a path the turn changed must be left alone, or None when it can be rewound."""
    for entry in (before, after):
        if entry is not None and entry[2] is None:
            if entry[0] > cap:
                return f"over the {cap / 2**20:g} MB snapshot size cap"
            return "not snapshotted (unreadable, or the snapshot read budget ran out)"
    if same_content(now, after):
        return None
    if partly:
        return "changed between the undone turns: rewound only to the start of the later turn"
    return "changed since the turn: left as it is"


def write_back(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.ml-intern-undo")
    temporary.write_bytes(data)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def remove_if_empty(path: Path) -> bool:
    """Remove a directory holding nothing (bytecode caches aside)."""
    if path.is_symlink() or not path.is_dir():
        return False
    contents = list(path.iterdir())
    if any(child.name != "__pycache__" for child in contents):
        return False
    for child in contents:
        shutil.rmtree(child)
    path.rmdir()
    return True


async def rewind_workspace(session: Session, thread_id: str, starts: list[TurnStart]) -> FileRewind:
    """Undo the file changes of the turns in `starts` (newest first), then forget their snapshots."""
    rewind = FileRewind()
    snapshots = session.snapshots
    if snapshots is None:
        rewind.refused["(working directory)"] = "this session takes no workspace snapshots"
        return rewind
    turns = [(start, await snapshots.turn(thread_id, start.base)) for start in starts]

    def run() -> None:
        for index, (start, turn) in enumerate(turns):
            if turn is None or turn.start is None or turn.end is None:
                rewind.refused[f"(files of: {_clip(start.prompt, 40)})"] = "no snapshot of that turn"
            else:
                rewind.plan_turn(turn, index == 0, snapshots.max_file_bytes)
        rewind.apply(snapshots.store)

    await asyncio.to_thread(run)
    await snapshots.forget(thread_id, [start.base for start in starts])
    return rewind


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


async def update_thread_row(session: Session, thread_id: str, undone: int, values: dict[str, Any]) -> None:
    """Turn count, stop reason and usage totals as they were before the undone turns."""
    async with session.threads.conn.execute(
        "SELECT turns FROM ml_intern_threads WHERE thread_id = ?", (thread_id,)
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return
    turns = max(0, row[0] - undone)
    await session.threads.set_turns(thread_id, turns)
    await session.threads.end_turn(thread_id, values.get("stop_reason"), values.get("usage") or {})
    if turns == 0:  # the title was the first prompt, now undone: the next turn names the thread again
        await session.threads.conn.execute(
            "UPDATE ml_intern_threads SET title = '' WHERE thread_id = ?", (thread_id,)
        )
        await session.threads.conn.commit()


async def undo_turns(session: Session, thread_id: str, n: int = 1) -> UndoReport:
    """Rewind `thread_id` to before its last `n` user turns and put back the files those turns changed."""
    if n < 1:
        raise UserError(f"the number of turns to undo must be at least 1, not {n}")
    rewind = await find_rewind(session.app.checkpointer, thread_id, n)
    if not rewind.starts:
        raise NothingToUndo(f"nothing to undo in thread {thread_id}")
    before = await session.messages(thread_id)
    target = (await session.app.aget_state(rewind.target)).values if rewind.target else {}
    files = await rewind_workspace(session, thread_id, rewind.starts)
    if rewind.target:  # the new head: a copy of the checkpoint before the turns, on the same parent
        await session.app.aupdate_state(rewind.target, None, as_node="__copy__")
    else:  # undoing the first turn: the thread is empty again
        await session.app.checkpointer.adelete_thread(thread_id)
    await update_thread_row(session, thread_id, len(rewind.starts), target)
    return UndoReport(
        thread_id=thread_id,
        turns_undone=len(rewind.starts),
        messages_removed=count_removed(before, target.get("messages", [])),
        restored=sorted(files.restored),
        removed=sorted(files.removed),
        not_restored=sorted(files.refused.items()),
        remote_effects=remote_effects(rewind.written),
        prompts=[start.prompt for start in reversed(rewind.starts)],
    )
