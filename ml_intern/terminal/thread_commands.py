"""The chat's thread commands: /new, /clear, /threads and /resume [index|id-prefix]."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from ml_intern.errors import UserError
from ml_intern.terminal.tables import threads_table
from ml_intern.terminal.text import dim, inert, when

if TYPE_CHECKING:
    from ml_intern.session.session import Session
    from ml_intern.session.threads import ThreadInfo

RESUME_LIST = 20  # threads `/resume` lists
Follow = Callable[[dict[str, Any]], Awaitable[None]]  # asks about a pending approval and resumes the turn


def resume_rows(rows: list[ThreadInfo]) -> Text:
    """The numbered list `/resume` shows: date, short id, turns, model, title."""
    lines = [
        f"{index:>3}. {when(row.updated_at)}  {row.thread_id[:8]}  {row.turns:>3} turn(s)  {row.model}  "
        f"{row.title[:60]}"
        for index, row in enumerate(rows, 1)
    ]
    return Text(inert("\n".join(lines)))  # titles are the user's text: never markup or escapes


def chosen_thread(argument: str, rows: list[ThreadInfo]) -> str:
    """The thread id prefix an answer means: a number of the list, else an id prefix."""
    if argument.isdigit() and 1 <= int(argument) <= len(rows):
        return rows[int(argument) - 1].thread_id
    if argument.isdigit() and len(argument) < 4:
        raise UserError(f"no thread number {argument}: /resume lists {len(rows)}")
    return argument


class ThreadCommands:
    """/new, /clear, /threads, /resume for a chat's session (set once it is open)."""

    def __init__(self, console: Console, answers: Any, follow: Follow) -> None:
        self.console, self.follow = console, follow
        self.answers = answers  # where the chat reads answers (a prompt_toolkit session), set by the chat
        self.session: Session | None = None

    def _session(self) -> Session:
        assert self.session is not None, "the chat sets the session before running commands"
        return self.session

    async def new(self, argument: str) -> None:
        await self._session().new_thread()

    async def clear(self, argument: str) -> None:
        """The original's /clear: a clear screen, then a new thread."""
        self.console.clear()
        await self.new(argument)

    async def threads(self, argument: str) -> None:
        session = self._session()
        rows = await session.list_threads(20)
        current = session.thread_id
        self.console.print(threads_table(rows, when, current) if rows else "no threads yet")

    async def resume(self, argument: str) -> None:
        """Switch the chat to a stored thread (by number or id prefix), with its own model."""
        session = self._session()
        rows = [
            row for row in await session.list_threads(RESUME_LIST + 1) if row.thread_id != session.thread_id
        ]
        rows = rows[:RESUME_LIST]
        if not argument:
            if not rows:
                self.console.print("no other threads yet")
                return
            self.console.print(resume_rows(rows))
            argument = (await self._ask("pick a number (blank to cancel): ")).strip()
            if not argument:
                self.console.print(dim("resume cancelled"))
                return
        await session.resume_thread(chosen_thread(argument, rows))  # its banner: the `ready` event
        approval = await session.pending_approval()
        if approval:
            self.console.print("This thread is waiting for your answer:", style="yellow")
            await self.follow(approval)

    async def _ask(self, question: str) -> str:
        """One answer; Ctrl-C or Ctrl-D answer blank."""
        try:
            return str(await self.answers.prompt_async(question, handle_sigint=False))
        except (EOFError, KeyboardInterrupt):
            return ""
