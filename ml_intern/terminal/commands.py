"""The chat's slash commands: /help /undo /compact /model /new /threads /status /share-traces /yolo /quit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rich.console import Console

from ml_intern.errors import EXIT_OK, UserError
from ml_intern.model.errors import explain_model_error
from ml_intern.secrets import redact
from ml_intern.session.session import Session
from ml_intern.session.traces import HubAccess, trace_visibility
from ml_intern.terminal.asking import YOLO_ON, ApprovalQuestions
from ml_intern.terminal.foreground import Cancelled, ChatExit, Foreground
from ml_intern.terminal.tables import help_table, status_text, threads_table
from ml_intern.terminal.text import dim, inert, red, when

Command = Callable[[str], Awaitable[None]]


class SlashCommands:
    """Runs a `/command argument` line; a failing command prints one error line and the chat goes on."""

    def __init__(
        self, session: Session, console: Console, foreground: Foreground, questions: ApprovalQuestions
    ) -> None:
        self.session, self.console = session, console
        self.foreground, self.questions = foreground, questions
        self.commands: dict[str, Command] = {
            "/help": self.help, "/undo": self.undo, "/compact": self.compact, "/model": self.model,
            "/new": self.new, "/threads": self.threads, "/status": self.status, "/yolo": self.yolo,
            "/quit": self.quit, "/exit": self.quit, "/share-traces": self.share_traces,
        }  # fmt: skip

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

    async def new(self, argument: str) -> None:
        await self.session.new_thread()

    async def yolo(self, argument: str) -> None:
        self.questions.yolo = not self.questions.yolo
        self.console.print(f"yolo {'on: ' + YOLO_ON if self.questions.yolo else 'off'}")

    async def threads(self, argument: str) -> None:
        rows = await self.session.list_threads(20)
        current = self.session.thread_id
        self.console.print(threads_table(rows, when, current) if rows else "no threads yet")

    async def status(self, argument: str) -> None:
        ctx = self.session.ctx
        assert ctx is not None
        status = await self.session.status()
        approval = "yolo (all but scheduled jobs)" if self.questions.yolo else ctx.approval
        self.console.print(status_text(ctx.model, status, approval, ctx.workdir))

    async def share_traces(self, argument: str) -> None:
        if argument not in ("", "public", "private"):
            raise UserError("usage: /share-traces [public|private]")
        private = None if not argument else argument == "private"
        access = HubAccess.from_environ(self.session.environ)
        self.console.print(await asyncio.to_thread(trace_visibility, access, private), markup=False)

    async def undo(self, argument: str) -> None:
        if argument and not (argument.isdigit() and int(argument) > 0):
            raise UserError("usage: /undo [N], with N the number of turns to rewind")
        report = await self.foreground.run(self.session.undo(n=int(argument or 1)))
        for line in report.lines():
            self.console.print(line, markup=False)

    async def compact(self, argument: str) -> None:
        ctx = self.session.ctx
        assert ctx is not None
        try:
            with self.console.status("compacting…"):
                done = await self.foreground.run(self.session.compact())
        except (Cancelled, UserError):
            raise
        except Exception as exc:
            raise UserError(explain_model_error(exc, ctx.model)[0]) from None
        if done is None:
            self.console.print(dim("nothing to compact yet"))

    async def model(self, argument: str) -> None:
        ctx = self.session.ctx
        assert ctx is not None
        if not argument:
            self.console.print(
                f"model {ctx.model} (/model ID switches, e.g. /model anthropic/claude-sonnet-4-5)"
            )
            return
        keep = f"; keeping {ctx.model}"
        try:
            with self.console.status(f"checking that {argument} answers…"):
                await self.foreground.run(self.session.switch_model(argument))
        except UserError as exc:
            raise UserError(f"{exc}{keep}") from None
        except Cancelled:
            raise UserError(f"cancelled{keep}") from None
        self.console.print(f"model switched to {argument}")
