"""The chat's slash commands: /help /undo /compact /model /effort /new /clear /threads /resume /status
/share-traces /yolo /quit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from ml_intern.errors import EXIT_OK, UserError
from ml_intern.paths import home_dir
from ml_intern.secrets import redact
from ml_intern.terminal.asking import YOLO_ON, ApprovalQuestions
from ml_intern.terminal.foreground import Cancelled, ChatExit, Foreground
from ml_intern.terminal.tables import effort_text, help_table, status_text
from ml_intern.terminal.text import dim, inert, red
from ml_intern.terminal.thread_commands import Follow, ThreadCommands

if TYPE_CHECKING:
    from ml_intern.session.opening import SessionOpening
    from ml_intern.session.session import Session

Command = Callable[[str], Awaitable[None]]
# Commands that never reach the chat model: they run at once, even while litellm still loads.
WITHOUT_MODEL = frozenset(
    {"/help", "/quit", "/exit", "/yolo", "/status", "/effort", "/threads", "/new", "/clear", "/undo"}
) | {"/share-traces"}


class SlashCommands:
    """Runs a `/command argument` line; a failing command prints one error line and the chat goes on."""

    def __init__(
        self,
        console: Console,
        foreground: Foreground,
        questions: ApprovalQuestions,
        follow: Follow,
        opening: SessionOpening,
    ) -> None:
        self.console, self.foreground, self.questions = console, foreground, questions
        self.opening = opening  # model_loaded(): litellm, loading since start-up, awaited off the loop
        self.thread_commands = ThreadCommands(console, questions, follow)
        self._session: Session | None = None  # set by the chat once its session is open
        t = self.thread_commands
        self.commands: dict[str, Command] = {
            "/help": self.help, "/undo": self.undo, "/compact": self.compact, "/model": self.model,
            "/effort": self.effort, "/new": t.new, "/clear": t.clear, "/threads": t.threads,
            "/resume": t.resume, "/status": self.status, "/yolo": self.yolo, "/quit": self.quit,
            "/exit": self.quit, "/share-traces": self.share_traces,
        }  # fmt: skip

    @property
    def session(self) -> Session:
        assert self._session is not None, "the chat sets the session before running commands"
        return self._session

    @session.setter
    def session(self, session: Session) -> None:
        self._session = self.thread_commands.session = session
        self.thread_commands.answers = self.questions.answers

    def error(self, message: str) -> None:
        self.console.print(red(f"error: {inert(redact(message))}"))

    async def run(self, line: str) -> None:
        """Run one command line (ChatExit, from /quit, passes through)."""
        name, _, argument = line.partition(" ")
        command = self.commands.get(name.lower())
        if command is None:
            self.error(f"unknown command {name}: /help lists the commands")
            return
        try:
            if name.lower() not in WITHOUT_MODEL and not self.opening.models_loaded:  # imported on the
                with self.console.status(dim("loading the model library…")):  # event loop, it would freeze it
                    await self.foreground.run(self.opening.model_loaded())
            await command(argument.strip())
        except Cancelled:
            self.console.print(f"{name} cancelled", style="yellow")
            self.foreground.exit_if_asked()
        except UserError as exc:
            self.error(str(exc))
        except Exception as exc:  # a bug in one command must not end the chat
            self.error(f"{name} failed: {type(exc).__name__}: {exc}")

    async def help(self, argument: str) -> None:
        self.console.print(help_table())

    async def quit(self, argument: str) -> None:
        raise ChatExit(EXIT_OK)

    async def yolo(self, argument: str) -> None:
        self.questions.yolo = not self.questions.yolo
        self.console.print(f"yolo {'on: ' + YOLO_ON if self.questions.yolo else 'off'}")

    async def status(self, argument: str) -> None:
        from ml_intern.model.effort import effort_in_use

        ctx = self.session.ctx
        assert ctx is not None
        status = await self.session.status()
        approval = "yolo (all but scheduled jobs)" if self.questions.yolo else ctx.approval
        effort = effort_in_use(ctx.services, ctx.reasoning_effort) if ctx.services is not None else "?"
        self.console.print(status_text(ctx.model, status, approval, ctx.workdir, effort))

    async def share_traces(self, argument: str) -> None:
        from ml_intern.session.traces import HubAccess, trace_visibility

        if argument not in ("", "public", "private"):
            raise UserError("usage: /share-traces [public|private]")
        private = None if not argument else argument == "private"
        ctx = self.session.ctx
        config = ctx.services.config if ctx is not None and ctx.services is not None else None
        access = HubAccess.from_environ(self.session.environ, config)
        self.console.print(await asyncio.to_thread(trace_visibility, access, private), markup=False)

    async def undo(self, argument: str) -> None:
        if argument and not (argument.isdigit() and int(argument) > 0):
            raise UserError("usage: /undo [N], with N the number of turns to rewind")
        report = await self.foreground.run(self.session.undo(n=int(argument or 1)))
        for line in report.lines():
            self.console.print(inert(line), markup=False)  # hosts and paths from a (shared) database

    async def compact(self, argument: str) -> None:
        from ml_intern.model.errors import explain_model_error

        ctx = self.session.ctx
        assert ctx is not None
        try:
            with self.console.status("compacting…"):
                done = await self.foreground.run(self.session.compact())
        except (Cancelled, UserError):
            raise
        except Exception as exc:
            kind = ctx.services.model.kind if ctx.services is not None else None
            raise UserError(explain_model_error(exc, ctx.model, kind)[0]) from None
        if done is None:
            self.console.print(dim("nothing to compact yet"))

    async def effort(self, argument: str) -> None:
        """`/effort`: the preference and what the model accepted; `/effort LEVEL` sets it (off: none)."""
        from ml_intern.model.effort import describe, effort_in_use, parse_effort

        ctx = self.session.ctx
        assert ctx is not None and ctx.services is not None
        if argument:
            level = parse_effort(argument)
            self.session.ctx = ctx = dataclasses.replace(ctx, reasoning_effort=level)
            ctx.services.effort_cache.clear()  # the new preference is tried as asked
            self.console.print(f"reasoning effort: {describe(level)}")
            return
        used = effort_in_use(ctx.services, ctx.reasoning_effort)
        self.console.print(
            effort_text(ctx.model, describe(ctx.reasoning_effort), used, ctx.services.effort_cache)
        )

    async def model(self, argument: str) -> None:
        from ml_intern.model.catalogue import model_overview, model_report
        from ml_intern.model.effort import effort_in_use

        ctx = self.session.ctx
        assert ctx is not None
        environ, home = self.session.environ, home_dir(self.session.environ)
        if not argument:
            lines = await asyncio.to_thread(model_overview, ctx.model, environ, home)
            self.console.print(Text(inert("\n".join(lines))))
            return
        with self.console.status(f"looking up {argument}…"):
            report = await self.foreground.run(asyncio.to_thread(model_report, argument, environ, home))
        self.console.print(Text(inert("\n".join(report)), style="dim"))
        keep = f"; keeping {ctx.model}"
        try:
            with self.console.status(f"checking that {argument} answers…"):
                await self.foreground.run(self.session.switch_model(argument))
        except UserError as exc:
            raise UserError(f"{exc}{keep}") from None
        except Cancelled:
            raise UserError(f"cancelled{keep}") from None
        switched = self.session.ctx
        assert switched is not None and switched.services is not None
        effort = effort_in_use(switched.services, switched.reasoning_effort)
        self.console.print(f"model switched to {argument} (effort: {effort})")
