"""The Session: what both front-ends (chat, headless) and tests use to open, run and settle threads."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ml_intern.errors import UserError
from ml_intern.graph import events
from ml_intern.graph.builder import build_graph
from ml_intern.graph.context import RunContext
from ml_intern.graph.events import EventSink
from ml_intern.graph.messages import is_user_turn
from ml_intern.graph.turns import new_turn
from ml_intern.session import notifications, pending, run_sandbox, runner, start
from ml_intern.session.compaction import Compaction, compact_thread
from ml_intern.session.db_locks import make_locks
from ml_intern.session.locks import ThreadLocks
from ml_intern.session.model_switch import context_for_model, rebuild_context
from ml_intern.session.options import RunOptions
from ml_intern.session.planning import Login, plan_start, run_in_thread
from ml_intern.session.planning import StartPlan as Plan
from ml_intern.session.runner import TurnOutcome
from ml_intern.session.settling import Settling
from ml_intern.session.status import ThreadStatus, thread_status
from ml_intern.session.storage import Storage, open_storage
from ml_intern.session.threads import ThreadInfo, ThreadStore, new_thread_id, thread_config
from ml_intern.session.traces import TraceUpload, retry_once, upload_thread_trace
from ml_intern.session.turn_snapshots import snapshot_turn_end, snapshot_turn_start
from ml_intern.session.undo import UndoReport, undo_turns
from ml_intern.session.workspace import WorkspaceSnapshots


def ignore(event: events.Event) -> None:
    """An event sink that drops everything (tests, `ml-intern threads`)."""


@dataclass
class Session(Settling):
    """One database (compiled graph, thread table, workspace snapshots), the thread being worked on and its
    run settings. Events go to `on_event`; methods taking `thread_id=None` act on the current thread."""

    app: Any  # the compiled graph with its checkpointer
    threads: ThreadStore  # thread metadata rows
    snapshots: WorkspaceSnapshots | None = None  # workdir snapshots around user turns (None: no file undo)
    storage: Storage | None = None  # where threads and checkpoints are (named in storage errors)
    on_event: EventSink = ignore  # the front-end's event consumer
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)  # credentials, endpoints
    ctx: RunContext | None = None  # model, tools and settings of the run; set by `begin`
    thread_id: str = ""  # the current thread
    locks: ThreadLocks = field(init=False)  # one writer per thread: this process's thread locks

    def __post_init__(self) -> None:
        storage = self.storage
        self.locks = make_locks(storage and storage.target, storage and storage.home)

    async def start(
        self, options: RunOptions, interactive: bool, login: Login | None = None, plan: Plan | None = None
    ) -> None:
        """Begin what `plan` decided (else decided here; `login` asks for a missing HF token) off the loop."""
        stored = await self.threads.find(options.thread or None) if options.thread is not None else None
        plan = plan or await plan_start(options, self.environ, self.on_event, login, stored)
        settings = (options, plan.config, plan.model_id, interactive, self.environ, stored)
        ctx = await run_in_thread(start.run_context, *settings)  # a stored thread keeps its tool runtime
        await run_in_thread(retry_once, plan.config, self.environ)  # pending traces: sent in the background
        self.locks.idle = "in a chat" if interactive else "running a headless turn"
        await self.begin(ctx, plan.thread_id, plan.new_id)

    async def begin(self, ctx: RunContext, thread_id: str | None = None, new_id: str | None = None) -> None:
        """Work with `ctx` on the stored thread `thread_id` or a new one (`new_id` or fresh); ThreadBusy."""
        self.locks.take(chosen := thread_id or new_id or new_thread_id())
        self.ctx, self.thread_id = ctx, chosen
        if self.snapshots is not None and ctx.services is not None:
            self.snapshots.keep_turns = ctx.services.config.undo.keep_turns
        run_sandbox.name_sandbox(ctx, chosen, self._notices, preload=True)
        tools = len(ctx.services.tools) if ctx.services is not None else 0
        self.on_event(events.thread_started(self.thread_id, ctx.model))
        runtime = run_sandbox.runtime_of(ctx)
        self.on_event(events.ready(self.thread_id, ctx.model, tools, ctx.workdir, runtime))
        if thread_id:
            waiting = await self.pending_approval() is not None
            turns = await self.user_turns()
            self.on_event(events.resume_complete(self.thread_id, ctx.model, turns, waiting))

    def _notices(self, event: events.Event) -> None:
        """To the front-end's current sink (the chat changes it after the session opens)."""
        self.on_event(event)

    async def new_thread(self) -> str:
        """`/new`: go on in a fresh thread with the same settings."""
        previous, turns = self.thread_id, await self.user_turns()
        self.locks.take(new_id := new_thread_id())
        self.thread_id = new_id
        run_sandbox.name_sandbox(self.ctx, new_id)  # the same sandbox, with the previous thread's files
        self.on_event(events.new_complete(self.thread_id, previous, turns))
        return self.thread_id

    async def resume_thread(self, prefix: str) -> ThreadInfo:
        """`/resume`: go on with the stored thread `prefix` names, with its own model and tool runtime."""
        old, row = self.ctx, await self.threads.find(prefix)
        assert old is not None, "begin() first"
        run_sandbox.check_runtime(row, run_sandbox.runtime_of(old))
        switch = bool(row.model) and row.model != old.model
        ctx = await run_in_thread(rebuild_context, old, row.model, self.environ) if switch else old
        run_sandbox.move_sandbox(old, ctx)  # the run keeps its one sandbox across model switches
        try:
            await self.begin(ctx, row.thread_id)
        finally:  # the services left unused are closed: the old ones once switched, the new ones on failure
            unused = old if self.ctx is ctx else ctx
            run_sandbox.move_sandbox(unused, self.ctx)  # back, when `ctx` is left unused
            if ctx is not old and unused.services is not None:
                await unused.services.aclose()
        return row

    async def close(self) -> None:
        """Stop the run's services (sandbox, MCP servers), free the thread; `shutdown` when one was begun."""
        self.locks.release()
        if self.ctx is None:
            return
        if self.ctx.services is not None:  # the sandbox's deletion: bounded, never cut short
            await run_sandbox.to_the_end(self.ctx.services.aclose())
        self.on_event(events.shutdown())

    async def send(self, prompt: str) -> TurnOutcome:
        """A user message: an unanswered approval is settled as abandoned, then the turn runs."""
        await self.abandon_pending_approval()
        return await self._run(new_turn(prompt), title=prompt)

    async def answer(self, decisions: dict[str, Any]) -> TurnOutcome:
        """Resume the turn waiting for approval with `decisions` (DESIGN.md resume value)."""
        return await self._run(runner.resume_with(decisions))

    async def finish(self) -> TurnOutcome:
        """`resume --continue`: finish a turn that was cut off, or report the one that had ended."""
        graph_input = await runner.unfinished_input(self.app, self.thread_id)
        if graph_input is not runner.FINISHED:
            return await self._run(graph_input)
        ended = await runner.outcome(self.app, thread_config(self.thread_id))
        self.on_event(ended.completed(self.thread_id))
        return ended

    async def turn(
        self, thread_id: str, graph_input: Any, ctx: RunContext, on_event: EventSink, title: str = ""
    ) -> TurnOutcome:
        """Run one turn and keep the thread row current (a new user message counts as a turn)."""
        if title:
            await self.threads.start_turn(
                thread_id, title, ctx.model, ctx.workdir, run_sandbox.runtime_of(ctx)
            )
        journal = await snapshot_turn_start(self.app, self.snapshots, thread_id, graph_input, ctx, on_event)
        run_ctx = replace(ctx, journal=journal)  # local tool calls record their changes in the journal
        try:
            return await runner.run_turn(self.app, thread_id, graph_input, run_ctx, on_event)
        finally:
            values = (await self.app.aget_state(thread_config(thread_id))).values or {}
            await self.threads.end_turn(thread_id, values.get("stop_reason"), values.get("usage") or {})
            await snapshot_turn_end(self.snapshots, thread_id, on_event)

    async def _run(self, graph_input: Any, title: str = "") -> TurnOutcome:
        """A turn of the current thread; a failure becomes one `error` event and a TurnFailed."""
        assert self.ctx is not None, "begin() first"
        on_event = notifications.notifying(self.on_event, self.ctx, self.thread_id, self.environ)
        try:
            async with self.locks.writing(self.thread_id, "running a turn", watch=True):
                done = await self.turn(self.thread_id, graph_input, self.ctx, on_event, title=title)
        except UserError:
            raise
        except Exception as exc:
            failed = runner.turn_failure(exc, self.thread_id, self.ctx, self.storage)
            on_event(events.error(str(failed)))
            raise failed from None
        if done.approval:
            on_event(events.approval_required(done.approval.get("tool_calls") or []))
        on_event(done.completed(self.thread_id))
        return done

    async def interrupt(self) -> int:
        """After Ctrl-C cut a turn short: answer the calls the turn left (a cancelled sandbox command stopped
        itself; the model's background jobs run on until the sandbox is deleted)."""
        stopped = await self.settle(pending.INTERRUPTED, "interrupted", "interrupted")
        self.on_event(events.interrupted(self.thread_id, stopped))
        return stopped

    async def undo(self, thread_id: str | None = None, n: int = 1) -> UndoReport:
        """Rewind the last `n` user turns and the files they changed."""
        thread_id = thread_id or self.thread_id
        async with self.locks.writing(thread_id, f"undoing {n} turn{'s' if n != 1 else ''}"):
            report = await undo_turns(self, thread_id, n)
        self.on_event(report.event())
        return report

    async def compact(self) -> Compaction | None:
        """Summarise the current thread now; None when there is nothing to cut."""
        assert self.ctx is not None, "begin() first"
        done = await compact_thread(self.app, self.thread_id, self.ctx)
        if done is not None:
            self.on_event(events.compacted(done.tokens_before, done.tokens_after))
        return done

    async def switch_model(self, model_id: str) -> None:
        """Use `model_id` from now on, once it answered a check call (else a UserError; nothing changes)."""
        assert self.ctx is not None, "begin() first"
        switched = await context_for_model(self.ctx, model_id, self.environ)
        run_sandbox.move_sandbox(self.ctx, switched)  # the same sandbox, not a second Space
        self.ctx = switched

    async def status(self, thread_id: str | None = None) -> ThreadStatus:
        return await thread_status(self.app, thread_id or self.thread_id, run_sandbox.tools_status(self.ctx))

    async def share_trace(self) -> TraceUpload | None:
        """Start uploading the thread's trace when the user opted in (None: nothing started)."""
        services = self.ctx.services if self.ctx is not None else None
        return await upload_thread_trace(self, self.thread_id, services and services.config, self.environ)

    async def find_thread(self, prefix: str | None) -> ThreadInfo:  # None: the most recent
        return await self.threads.find(prefix)

    async def list_threads(self, limit: int = 50) -> list[ThreadInfo]:  # most recently updated first
        return await self.threads.list(limit)

    async def messages(self, thread_id: str | None = None) -> list[Any]:
        state = await self.app.aget_state(thread_config(thread_id or self.thread_id))
        return (state.values or {}).get("messages", [])

    async def user_turns(self, thread_id: str | None = None) -> int:
        return sum(1 for m in await self.messages(thread_id) if is_user_turn(m))


@asynccontextmanager
async def open_session(
    target: Path | str, on_event: EventSink = ignore, home: Path | None = None
) -> AsyncIterator[Session]:
    """Open `target` (a SQLite file, or a postgresql:// URL) and compile the graph against it; `home`:
    where this machine's files go (default: the SQLite file's folder, or ML_INTERN_HOME)."""
    async with open_storage(target, home) as storage:
        snapshots = WorkspaceSnapshots(storage.db, storage.home, storage.file)
        app = build_graph(checkpointer=storage.saver)
        yield Session(app, ThreadStore(storage.db), snapshots, storage=storage, on_event=on_event)
