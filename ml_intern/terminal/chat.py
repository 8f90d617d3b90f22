"""The chat front-end: the banner and the prompt first (the session opens behind them, litellm loads while the
user types), then read a line, run a slash command or a turn, ask about calls needing approval."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory
from rich.console import Console

from ml_intern.errors import EXIT_INTERRUPTED, EXIT_OK, TurnFailed, UserError
from ml_intern.paths import home_dir
from ml_intern.session.opening import SessionOpening
from ml_intern.session.options import RunOptions
from ml_intern.session.planning import Login, StartPlan, plan_start
from ml_intern.session.start import tool_runtime
from ml_intern.session.threads import new_thread_id
from ml_intern.terminal.asking import ApprovalQuestions
from ml_intern.terminal.commands import SlashCommands
from ml_intern.terminal.foreground import Cancelled, ChatExit, Foreground
from ml_intern.terminal.live import ChatView
from ml_intern.terminal.login import ask_hf_token
from ml_intern.terminal.tables import banner
from ml_intern.terminal.text import dim

if TYPE_CHECKING:
    from ml_intern.session.runner import TurnOutcome
    from ml_intern.session.session import Session

NO_TERMINAL = 'the chat needs a terminal: give the task as an argument (or "-" to read stdin) to run headless'
LEAVE = ("exit", "quit", ":q", "/quit", "/exit")  # lines that leave the chat (bare words as the original)
log = logging.getLogger(__name__)


def require_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(NO_TERMINAL)


async def run_chat(opening: SessionOpening, options: RunOptions) -> int:
    """The chat on the thread `options` names (or a new one) of the session `opening` opens; its exit code."""
    require_terminal()
    chat = Chat(opening, Console(highlight=False), options)
    loop = asyncio.get_running_loop()
    foreground = chat.foreground
    stop = lambda: foreground.terminate((chat.lines, chat.questions.answers))  # noqa: E731  SIGTERM, SIGHUP
    handlers = {signal.SIGINT: foreground.sigint_unless_closing, signal.SIGTERM: stop, signal.SIGHUP: stop}
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:  # the handlers stay until the session is closed: a signal must not cut the sandbox's deletion short
        return await chat.run()
    finally:
        foreground.closing = True
        try:
            session = chat.session or await opening.settle()
            if session is not None:
                await session.close()
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)


class Chat:
    """The interactive loop over one session."""

    def __init__(self, opening: SessionOpening, console: Console, options: RunOptions) -> None:
        self.opening, self.console, self.options = opening, console, options
        self.session: Session | None = None  # set once the opening is done (the first line waits for it)
        self.view = ChatView(console)  # the session's event consumer
        self.foreground = Foreground()
        self.questions = ApprovalQuestions(console, self.foreground)
        self.commands = SlashCommands(console, self.foreground, self.questions, self._follow, opening)
        self.early: list[dict[str, Any]] = []  # events of the opening, shown once it is done
        self.lines: Any = None  # prompt_toolkit session for messages, with history

    async def run(self) -> int:
        """Chat until the user leaves; return the exit code."""
        history = home_dir(os.environ) / "prompt_history"
        history.parent.mkdir(parents=True, exist_ok=True)
        self.lines = PromptSession(history=FileHistory(str(history)))
        self.questions.answers = PromptSession()
        try:
            await self._open()
            log.info("chat prompt shown; litellm loaded: %s", "litellm" in sys.modules)  # start-up's cost
            while True:
                await self._handle(await self._read())
        except ChatExit as done:
            await self._goodbye()
            return done.code

    async def _open(self) -> None:
        """A new thread: decide the model, show the banner, open the session behind the prompt. A stored
        thread is opened before the prompt: an approval it waits on is asked first."""
        login = partial(ask_hf_token, self.console, os.environ)
        plan: StartPlan | None = None
        if self.options.thread is None:
            plan = await plan_start(self.options, os.environ, self.view.event, login)
            plan = replace(plan, new_id=new_thread_id())
            runtime = tool_runtime(self.options, plan.config, None)
            self.console.print(banner(plan.model_id, plan.new_id or "", str(Path.cwd()), runtime))
        self.opening.prepare = partial(self._prepare, plan, login)
        self.opening.start()
        assert self.opening.task is not None
        self.opening.task.add_done_callback(self._opened)
        if plan is None:
            try:
                await self._ready()
            except Cancelled:  # Ctrl-C before the thread was open
                raise ChatExit(EXIT_INTERRUPTED) from None

    async def _prepare(self, plan: StartPlan | None, login: Login, session: Session) -> None:
        """Begin the run on the opened session (in the background for a new thread)."""
        session.on_event = self.early.append
        await session.start(self.options, interactive=True, login=login, plan=plan)

    def _opened(self, task: asyncio.Task[Session]) -> None:
        """The opening failed while the prompt waits for a line: end the prompt with the failure."""
        failed = not task.cancelled() and task.exception() is not None
        app = getattr(self.lines, "app", None)
        if failed and app is not None and app.is_running and self.session is None:
            app.exit(exception=task.exception())

    async def _ready(self) -> Session:
        """The session, once open (Ctrl-C while waiting: Cancelled); its early events are shown then."""
        if self.session is not None:
            return self.session
        if self.opening.ready or self.options.thread is not None:  # resuming: no spinner over a login prompt
            session = await self.foreground.run(self.opening.session())
        else:
            with self.console.status(dim("starting…")):
                session = await self.foreground.run(self.opening.session())
        self.session = self.questions.session = self.commands.session = session
        session.on_event = self.view.event
        shown = None if self.options.thread is not None else session.thread_id  # its banner is on screen
        for event in self.early:
            if not (event.get("type") == "ready" and event.get("thread_id") == shown):
                self.view.event(event)
        self.early.clear()
        await self._follow_pending()
        return session

    async def _follow_pending(self) -> None:
        """Ask about an approval the current thread waits on (a resumed thread)."""
        assert self.session is not None
        approval = await self.session.pending_approval()
        if approval:
            self.console.print("This thread is waiting for your answer:", style="yellow")
            await self._follow(approval)

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
        if line.lower() in LEAVE:
            raise ChatExit(EXIT_OK)
        if line.lower() == "/help":  # needs no session: never waits for it
            await self.commands.help("")
            return
        try:
            session = await self._ready()
        except Cancelled:
            self.console.print("cancelled while starting", style="yellow")
            self.foreground.exit_if_asked()
            return
        if line.startswith("/"):
            await self.commands.run(line)
            return
        outcome = await self._turn(self._send(session, line))
        if outcome is not None and outcome.approval:
            await self._follow(outcome.approval)
        await session.share_trace()  # in the background, when the user opted in

    async def _send(self, session: Session, line: str) -> TurnOutcome:
        await self.opening.model_loaded()  # litellm, loading since start-up: waited for off the event loop
        return await session.send(line)

    async def _answer(self, session: Session, decisions: dict[str, Any]) -> TurnOutcome:
        await self.opening.model_loaded()  # a resumed thread's approval may be answered before litellm loaded
        return await session.answer(decisions)

    async def _follow(self, approval: dict[str, Any] | None) -> None:
        """Ask about pending calls and resume the turn, until it ends or no one answers."""
        assert self.session is not None
        while approval:
            decisions = await self.questions.decide(approval)
            if decisions is None:
                return
            outcome = await self._turn(self._answer(self.session, decisions))
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
        assert self.session is not None
        if isinstance(exc, Cancelled):
            await self.session.interrupt()
            self.foreground.exit_if_asked()
        elif isinstance(exc, TurnFailed):
            if exc.resumable:
                self.console.print(dim("send a message to try again, or /model ID to switch"))
        else:
            self.commands.error(str(exc))

    async def _goodbye(self) -> None:
        if self.session is None:
            return
        thread_id = self.session.thread_id
        if await self.session.pending_approval():
            self.console.print(
                f"approval pending: answer it with ml-intern resume {thread_id}", style="yellow"
            )
        elif await self.session.user_turns():
            self.console.print(dim(f"thread {thread_id}: continue with ml-intern resume {thread_id}"))
