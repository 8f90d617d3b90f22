"""The chat front-end: read a line, run a slash command or a turn, ask about calls needing approval."""

from __future__ import annotations

import asyncio
import signal
import sys
from functools import partial
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory
from rich.console import Console

from ml_intern.errors import EXIT_INTERRUPTED, EXIT_OK, TurnFailed, UserError
from ml_intern.paths import home_dir
from ml_intern.session.options import RunOptions
from ml_intern.session.runner import TurnOutcome
from ml_intern.session.session import Session
from ml_intern.terminal.asking import ApprovalQuestions
from ml_intern.terminal.commands import SlashCommands
from ml_intern.terminal.foreground import Cancelled, ChatExit, Foreground
from ml_intern.terminal.live import ChatView
from ml_intern.terminal.login import ask_hf_token
from ml_intern.terminal.text import dim

NO_TERMINAL = 'the chat needs a terminal: give the task as an argument (or "-" to read stdin) to run headless'


def require_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(NO_TERMINAL)


async def run_chat(session: Session, options: RunOptions) -> int:
    """The chat on the thread `options` names (or a new one); its exit code."""
    require_terminal()
    console = Console(highlight=False)
    chat = Chat(session, console)
    session.on_event = chat.view.event
    try:
        await session.start(options, interactive=True, login=partial(ask_hf_token, console, session.environ))
        return await chat.run()
    finally:
        await session.close()


class Chat:
    """The interactive loop over one session."""

    def __init__(self, session: Session, console: Console) -> None:
        self.session, self.console = session, console
        self.view = ChatView(console)  # the session's event consumer
        self.foreground = Foreground()
        self.questions = ApprovalQuestions(session, console, self.foreground)
        self.commands = SlashCommands(session, console, self.foreground, self.questions)
        self.lines: Any = None  # prompt_toolkit session for messages, with history

    async def run(self) -> int:
        """Chat until the user leaves; return the exit code."""
        history = home_dir(self.session.environ) / "prompt_history"
        history.parent.mkdir(parents=True, exist_ok=True)
        self.lines = PromptSession(history=FileHistory(str(history)))
        self.questions.answers = PromptSession()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.foreground.on_sigint)
        try:
            approval = await self.session.pending_approval()
            if approval:
                self.console.print("This thread is waiting for your answer:", style="yellow")
                await self._follow(approval)
            while True:
                await self._handle(await self._read())
        except ChatExit as done:
            await self._goodbye()
            return done.code
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    async def _read(self) -> str:
        """The next non-empty line; Ctrl-D leaves, Ctrl-C twice within a second quits."""
        while True:
            self.foreground.exit_if_asked()
            try:
                text = await self.lines.prompt_async("> ", handle_sigint=False)
            except EOFError:
                raise ChatExit(EXIT_OK) from None
            except KeyboardInterrupt:
                if self.foreground.pressed_twice():
                    raise ChatExit(EXIT_INTERRUPTED) from None
                self.console.print(dim("(Ctrl-C again to quit; Ctrl-D or /quit to leave)"))
                continue
            if text.strip():
                self.foreground.forget_presses()
                return text.strip()

    async def _handle(self, line: str) -> None:
        if line.startswith("/"):
            await self.commands.run(line)
            return
        outcome = await self._turn(self.session.send(line))
        if outcome is not None and outcome.approval:
            await self._follow(outcome.approval)
        await self.session.share_trace()  # in the background, when the user opted in

    async def _follow(self, approval: dict[str, Any] | None) -> None:
        """Ask about pending calls and resume the turn, until it ends or no one answers."""
        while approval:
            decisions = await self.questions.decide(approval)
            if decisions is None:
                return
            outcome = await self._turn(self.session.answer(decisions))
            approval = outcome.approval if outcome else None

    async def _turn(self, work: Any) -> TurnOutcome | None:
        """Run a turn (a coroutine of the session) with its live view; None when cancelled or failed."""
        self.view.start()
        try:
            return await self.foreground.run(work)
        except (Cancelled, UserError) as exc:
            broke_off = exc
        finally:
            self.view.stop()
        await self._broke_off(broke_off)
        return None

    async def _broke_off(self, exc: Exception) -> None:
        """After a turn was cancelled (its calls are settled) or failed (the view showed the error)."""
        if isinstance(exc, Cancelled):
            await self.session.interrupt()
            self.foreground.exit_if_asked()
        elif isinstance(exc, TurnFailed):
            if exc.resumable:
                self.console.print(dim("send a message to try again, or /model ID to switch"))
        else:
            self.commands.error(str(exc))

    async def _goodbye(self) -> None:
        thread_id = self.session.thread_id
        if await self.session.pending_approval():
            self.console.print(
                f"approval pending: answer it with ml-intern resume {thread_id}", style="yellow"
            )
        elif await self.session.user_turns():
            self.console.print(dim(f"thread {thread_id}: continue with ml-intern resume {thread_id}"))
