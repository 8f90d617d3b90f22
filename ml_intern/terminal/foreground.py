"""Ctrl-C in the chat: cancel the work in flight; twice within a second, leave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from ml_intern.errors import EXIT_INTERRUPTED

DOUBLE_PRESS_S = 1.0  # two Ctrl-C within this many seconds quit the chat


class ChatExit(BaseException):
    """Leave the chat with `code`. A BaseException: no `except Exception` on the way may swallow it."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Cancelled(Exception):
    """Ctrl-C cancelled the work in flight."""


class Foreground:
    """Runs the chat's work so that Ctrl-C cancels it, and tells a first Ctrl-C from a second."""

    def __init__(self) -> None:
        self.last_ctrl_c = 0.0  # time.monotonic() of the latest Ctrl-C
        self.exit_code: int | None = None  # set by a second Ctrl-C while work runs
        self.task: asyncio.Future[Any] | None = None  # the work a Ctrl-C cancels
        self.closing = False  # the chat is over and its session closing: signals are ignored
        self.terminated = False  # SIGTERM or SIGHUP came (once is enough)

    def pressed_twice(self) -> bool:
        """Record a Ctrl-C; True when the previous one was less than a second ago."""
        now = time.monotonic()
        twice, self.last_ctrl_c = now - self.last_ctrl_c < DOUBLE_PRESS_S, now
        return twice

    def forget_presses(self) -> None:
        """A line was typed in between: the next Ctrl-C is a first press."""
        self.last_ctrl_c = 0.0

    def on_sigint(self) -> None:
        """Ctrl-C while work runs (the prompt reads it as a key instead): cancel the work."""
        if self.pressed_twice():
            self.exit_code = EXIT_INTERRUPTED
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def sigint_unless_closing(self) -> None:
        """Ctrl-C while work runs: cancel it (twice: leave); ignored once the session is closing."""
        if not self.closing:
            self.on_sigint()

    def terminate(self, prompts: Iterable[Any]) -> None:
        """SIGTERM or SIGHUP: leave as after Ctrl-C twice (the open `prompts` end); the session then closes
        (its sandbox deleted). Once: a repeat, or one while the session closes, is ignored."""
        if self.closing or self.terminated:
            return
        self.terminated = True
        self.exit_code = EXIT_INTERRUPTED
        self.on_sigint()  # cancels the work in flight, if any
        for app in (getattr(prompt, "app", None) for prompt in prompts):
            if app is not None and app.is_running:
                app.exit(exception=ChatExit(EXIT_INTERRUPTED))

    def exit_if_asked(self) -> None:
        if self.exit_code is not None:
            raise ChatExit(self.exit_code)

    async def run(self, work: Coroutine[Any, Any, Any]) -> Any:
        """Await `work` so that Ctrl-C cancels it, raising Cancelled."""
        if self.exit_code is not None:
            work.close()
            raise ChatExit(self.exit_code)
        self.task = asyncio.ensure_future(work)
        try:
            return await self.task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # the chat itself is being cancelled
                raise
            raise Cancelled from None
        finally:
            self.task = None
