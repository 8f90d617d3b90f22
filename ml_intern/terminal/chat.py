"""The interactive chat loop: read a line, run a slash command or a turn, ask about calls needing approval."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from ml_intern.cli import EXIT_INTERRUPTED, EXIT_OK, when
from ml_intern.configs.schema import AgentConfig

DOUBLE_PRESS_S = 1.0  # two Ctrl-C within this many seconds quit the chat


class ChatExit(Exception):
    """Leave the chat with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Cancelled(Exception):
    """Ctrl-C cancelled the work in flight."""


class Chat:
    """The interactive loop: read a line, run a slash command or a turn, ask about calls needing approval."""

    def __init__(self, session: Any, ctx: Any, config: AgentConfig, console: Any, thread_id: str) -> None:
        self.session, self.ctx, self.config, self.console = session, ctx, config, console
        self.thread_id = thread_id
        self.yolo = False  # approve every call that needs approval, except scheduled jobs
        self.last_ctrl_c = 0.0  # time.monotonic() of the latest Ctrl-C
        self.exit_code: int | None = None  # set by a second Ctrl-C while work runs
        self.task: asyncio.Future[Any] | None = None  # the work a Ctrl-C cancels
        self.lines: Any = None  # prompt_toolkit session for messages, with history
        self.answers: Any = None  # prompt_toolkit session for approval answers

    async def run(self) -> int:
        """Chat until the user leaves; return the exit code."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        from ml_intern.paths import home_dir
        from ml_intern.session.operations import pending_approval
        from ml_intern.terminal.render import banner

        history = home_dir(os.environ) / "prompt_history"
        history.parent.mkdir(parents=True, exist_ok=True)
        self.lines, self.answers = PromptSession(history=FileHistory(str(history))), PromptSession()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        self.console.print(banner(self.ctx.model, self.thread_id, self.ctx.workdir))
        try:
            approval = await pending_approval(self.session, self.thread_id)
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

    # ---- Ctrl-C ----

    def _pressed_twice(self) -> bool:
        """Record a Ctrl-C; True when the previous one was less than a second ago."""
        now = time.monotonic()
        twice, self.last_ctrl_c = now - self.last_ctrl_c < DOUBLE_PRESS_S, now
        return twice

    def _on_sigint(self) -> None:
        """Ctrl-C while work runs (the prompt reads it as a key instead): cancel the work."""
        if self._pressed_twice():
            self.exit_code = EXIT_INTERRUPTED
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def _exit_if_asked(self) -> None:
        if self.exit_code is not None:
            raise ChatExit(self.exit_code)

    async def _foreground(self, work: Any) -> Any:
        """Await `work` (a coroutine) so that Ctrl-C cancels it, raising Cancelled."""
        if self.exit_code is not None:
            work.close()
            raise ChatExit(self.exit_code)
        self.task = asyncio.ensure_future(work)
        try:
            return await self.task
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # the chat itself is being cancelled
                raise
            raise Cancelled from None
        finally:
            self.task = None

    # ---- input ----

    async def _read(self) -> str:
        """The next non-empty line; Ctrl-D leaves, Ctrl-C twice within a second quits."""
        from ml_intern.terminal.render import dim

        while True:
            self._exit_if_asked()
            try:
                text = await self.lines.prompt_async("> ", handle_sigint=False)
            except EOFError:
                raise ChatExit(EXIT_OK) from None
            except KeyboardInterrupt:
                if self._pressed_twice():
                    raise ChatExit(EXIT_INTERRUPTED) from None
                self.console.print(dim("(Ctrl-C again to quit; Ctrl-D or /quit to leave)"))
                continue
            if text.strip():
                self.last_ctrl_c = 0.0  # a line typed in between: the next Ctrl-C is a first press
                return text.strip()

    async def _handle(self, line: str) -> None:
        from ml_intern.session.operations import abandon_pending_approval
        from ml_intern.session.runner import new_turn

        if line.startswith("/"):
            await self._command(line)
            return
        await abandon_pending_approval(self.session, self.thread_id)
        outcome = await self._turn(new_turn(line), title=line)
        if outcome is not None and outcome.approval:
            await self._follow(outcome.approval)
        await self._share_trace()

    async def _share_trace(self) -> None:
        """Upload the thread's trace in the background when the user opted in (never blocks the chat)."""
        from ml_intern.session.traces import upload_thread_trace

        await upload_thread_trace(self.session, self.thread_id, self.config, os.environ)

    # ---- turns ----

    async def _follow(self, approval: dict[str, Any] | None) -> None:
        """Ask about pending calls and resume the turn, until it ends or no one answers."""
        from ml_intern.session.runner import resume_with

        while approval:
            decisions = await self._decide(approval)
            if decisions is None:
                return
            outcome = await self._turn(resume_with(decisions), title="")
            approval = outcome.approval if outcome else None

    async def _turn(self, graph_input: Any, title: str) -> Any:
        """Run one turn (or its continuation) and draw it; None when it was cancelled or failed."""
        from ml_intern.errors import UserError
        from ml_intern.model.errors import explain_model_error

        try:
            outcome = await self._drawn_turn(graph_input, title)
        except Cancelled:
            await self._interrupted()
            return None
        except UserError as exc:
            self._error(str(exc))
            return None
        except Exception as exc:
            message, _ = explain_model_error(exc, self.ctx.model)
            self._error(f"{message}; send a message to try again, or /model ID to switch")
            return None
        self._report_stop(outcome)
        return outcome

    async def _drawn_turn(self, graph_input: Any, title: str) -> Any:
        from ml_intern.terminal.render import ChatRenderer

        renderer = ChatRenderer(self.console)
        renderer.start()
        try:
            work = self.session.turn(self.thread_id, graph_input, self.ctx, renderer.event, title=title)
            return await self._foreground(work)
        finally:
            renderer.stop()

    async def _interrupted(self) -> None:
        """After Ctrl-C: answer the calls that were cut off, so the thread stays valid."""
        from ml_intern.session.operations import INTERRUPTED, settle_pending_calls

        stopped = await settle_pending_calls(self.session, self.thread_id, INTERRUPTED, "interrupted")
        detail = f": {stopped} tool call(s) stopped" if stopped else ""
        self.console.print(f"interrupted{detail}", style="yellow")
        self._exit_if_asked()

    def _report_stop(self, outcome: Any) -> None:
        """Say why a turn stopped early, and what to do."""
        from ml_intern.terminal.render import stop_hint

        hint = stop_hint(outcome.stop_reason, outcome.iterations)
        if hint:
            self.console.print(hint, style="yellow")

    def _error(self, message: str) -> None:
        from ml_intern.errors import redact
        from ml_intern.terminal.render import red

        self.console.print(red(f"error: {redact(message)}"))

    # ---- approvals ----

    async def _decide(self, approval: dict[str, Any]) -> dict[str, Any] | None:
        """The resume value for an approval request; None when the user cancelled the turn."""
        from ml_intern.session.operations import CANCELLED, settle_pending_calls
        from ml_intern.terminal.render import APPROVAL_CHOICES, approval_card, approval_decision, dim

        calls = approval.get("tool_calls") or []
        decisions: dict[str, dict[str, Any]] = {}
        for index, call in enumerate(calls, 1):
            if self.yolo and not self._always_ask(call):
                decisions[call["id"]] = {"approved": True, "feedback": ""}
                self.console.print(dim(f"auto-approved (yolo): {call['name']}"))
                continue
            self.console.print(approval_card(call, index, len(calls)))
            self.console.print(dim(APPROVAL_CHOICES))
            answer = await self._approval_answer()
            if answer is None:
                await settle_pending_calls(self.session, self.thread_id, CANCELLED, "interrupted")
                self.console.print("turn cancelled", style="yellow")
                return None
            decisions[call["id"]], approve_all = approval_decision(answer)
            if approve_all and not self.yolo:
                self.yolo = True
                self.console.print("approving every call from now on (scheduled jobs are still asked)")
        return {"decisions": decisions}

    async def _approval_answer(self) -> str | None:
        """y, n, a or feedback; None on Ctrl-C; Ctrl-D or /quit leave with the question still pending."""
        while True:
            try:
                answer = (await self.answers.prompt_async("approve? ", handle_sigint=False)).strip()
            except EOFError:
                raise ChatExit(EXIT_OK) from None
            except KeyboardInterrupt:
                if self._pressed_twice():
                    raise ChatExit(EXIT_INTERRUPTED) from None
                return None
            if answer in ("/quit", "/exit"):
                raise ChatExit(EXIT_OK)
            if answer:
                return answer

    def _always_ask(self, call: dict[str, Any]) -> bool:
        """Calls never approved without asking (scheduled jobs), even in yolo mode."""
        from ml_intern.tools.registry import approval_need

        need = approval_need(call["name"], call.get("args") or {}, self.ctx.services.config)
        return bool(need and need.always_ask)

    async def _goodbye(self) -> None:
        from ml_intern.session.operations import pending_approval
        from ml_intern.terminal.render import dim

        if await pending_approval(self.session, self.thread_id):
            self.console.print(
                f"approval pending: answer it with ml-intern resume {self.thread_id}", style="yellow"
            )
        elif await self.session.user_turns(self.thread_id):
            self.console.print(
                dim(f"thread {self.thread_id}: continue with ml-intern resume {self.thread_id}")
            )

    # ---- slash commands ----

    async def _command(self, line: str) -> None:
        from ml_intern.errors import UserError

        name, _, argument = line.partition(" ")
        handler = {
            "/help": self._help, "/undo": self._undo, "/compact": self._compact, "/model": self._model,
            "/new": self._new, "/threads": self._threads, "/status": self._status, "/yolo": self._yolo,
            "/quit": self._quit, "/exit": self._quit, "/share-traces": self._share_traces,
        }.get(name.lower())  # fmt: skip
        if handler is None:
            self._error(f"unknown command {name}: /help lists the commands")
            return
        try:
            await handler(argument.strip())
        except Cancelled:
            self.console.print(f"{name} cancelled", style="yellow")
            self._exit_if_asked()
        except UserError as exc:
            self._error(str(exc))
        except Exception as exc:  # a bug in one command must not end the chat
            self._error(f"{name} failed: {type(exc).__name__}: {exc}")

    async def _help(self, argument: str) -> None:
        from ml_intern.terminal.render import help_table

        self.console.print(help_table())

    async def _quit(self, argument: str) -> None:
        raise ChatExit(EXIT_OK)

    async def _new(self, argument: str) -> None:
        from ml_intern.session.threads import new_thread_id

        self.thread_id = new_thread_id()
        self.console.print(f"new thread {self.thread_id}")

    async def _yolo(self, argument: str) -> None:
        self.yolo = not self.yolo
        state = (
            "on: calls are approved without asking (scheduled jobs are still asked)" if self.yolo else "off"
        )
        self.console.print(f"yolo {state}")

    async def _threads(self, argument: str) -> None:
        from ml_intern.terminal.render import threads_table

        rows = await self.session.threads.list(20)
        self.console.print(threads_table(rows, when, self.thread_id) if rows else "no threads yet")

    async def _status(self, argument: str) -> None:
        from ml_intern.session.operations import thread_status
        from ml_intern.terminal.render import status_text

        status = await thread_status(self.session, self.thread_id)
        approval = "yolo (all but scheduled jobs)" if self.yolo else self.ctx.approval
        self.console.print(status_text(self.ctx.model, status, approval, self.ctx.workdir))

    async def _share_traces(self, argument: str) -> None:
        from ml_intern.errors import UserError
        from ml_intern.session.traces import HubAccess, trace_visibility

        if argument not in ("", "public", "private"):
            raise UserError("usage: /share-traces [public|private]")
        private = None if not argument else argument == "private"
        line = await asyncio.to_thread(trace_visibility, HubAccess.from_environ(os.environ), private)
        self.console.print(line, markup=False)

    async def _undo(self, argument: str) -> None:
        from ml_intern.errors import UserError

        if argument and not (argument.isdigit() and int(argument) > 0):
            raise UserError("usage: /undo [N], with N the number of turns to rewind")
        try:
            from ml_intern.session.undo import undo_turns
        except ImportError:
            raise UserError("undo is not available in this installation") from None
        report = await self._foreground(undo_turns(self.session, self.thread_id, int(argument or 1)))
        for line in report.lines():
            self.console.print(line, markup=False)

    async def _compact(self, argument: str) -> None:
        from ml_intern.errors import UserError
        from ml_intern.model.errors import explain_model_error
        from ml_intern.session.operations import compact_now
        from ml_intern.terminal.render import dim

        try:
            with self.console.status("compacting…"):
                done = await self._foreground(compact_now(self.session, self.thread_id, self.ctx))
        except (Cancelled, UserError):
            raise
        except Exception as exc:
            raise UserError(explain_model_error(exc, self.ctx.model)[0]) from None
        if done is None:
            self.console.print(dim("nothing to compact yet"))
            return
        self.console.print(dim(f"compacted: {done.tokens_before:,} → {done.tokens_after:,} tokens"))

    async def _model(self, argument: str) -> None:
        from ml_intern.errors import UserError
        from ml_intern.model.credentials import needs_hf_token
        from ml_intern.session.operations import switch_model

        if not argument:
            self.console.print(
                f"model {self.ctx.model} (/model ID switches, e.g. /model anthropic/claude-sonnet-4-5)"
            )
            return
        keep = f"; keeping {self.ctx.model}"
        if needs_hf_token(argument, os.environ):
            raise UserError(f"{argument} needs a Hugging Face token (export HF_TOKEN or hf auth login){keep}")
        try:
            with self.console.status(f"checking that {argument} answers…"):
                self.ctx = await self._foreground(switch_model(self.ctx, argument, self.config, os.environ))
        except UserError as exc:
            raise UserError(f"{exc}{keep}") from None
        except Cancelled:
            raise UserError(f"cancelled{keep}") from None
        self.console.print(f"model switched to {argument}")
