"""The chat's approval questions: a card per call, then y / n / yolo (or a) / feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

from ml_intern.errors import EXIT_INTERRUPTED, EXIT_OK
from ml_intern.graph.budget import USAGE_CALL
from ml_intern.terminal.cards import APPROVAL_CHOICES, approval_card, approval_decision
from ml_intern.terminal.foreground import ChatExit, Foreground
from ml_intern.terminal.text import dim, inert

if TYPE_CHECKING:
    from ml_intern.session.session import Session

YOLO_ON = (
    "approving every call from now on (scheduled jobs, changes outside the working directory, credential "
    "reads and tools set to `always` are still asked)"
)


class ApprovalQuestions:
    """Asks about the calls a turn waits on; "yolo" (or "a", /yolo) then approves all but the always-asked."""

    def __init__(self, console: Console, foreground: Foreground) -> None:
        self.console, self.foreground = console, foreground
        self.session: Session | None = None  # set by the chat once its session is open
        self._yolo = False  # approve every call that needs approval, except those marked `always_ask`
        self.answers: Any = None  # the prompt_toolkit session answers are read with (set by the chat)

    @property
    def yolo(self) -> bool:
        """On after "yolo" or /yolo, or when the run started in yolo mode (config `yolo_mode`)."""
        ctx = self.session.ctx if self.session is not None else None
        return self._yolo or (ctx is not None and ctx.approval == "yolo")

    @yolo.setter
    def yolo(self, on: bool) -> None:
        """Turn yolo on or off; off also ends the graph's own yolo mode (config `yolo_mode`), on is done
        here so that each approved call gets its line."""
        self._yolo = on
        ctx = self.session.ctx if self.session is not None else None
        if not on and ctx is not None and ctx.approval == "yolo":
            ctx.approval = "ask"

    async def decide(self, approval: dict[str, Any]) -> dict[str, Any] | None:
        """The resume value for an approval request; None when the user cancelled the turn."""
        calls = approval.get("tool_calls") or []
        decisions: dict[str, dict[str, Any]] = {}
        for index, call in enumerate(calls, 1):
            # The payload says; a call saved before payloads carried `always_ask` is asked (fail closed).
            if self.yolo and not call.get("always_ask", True):
                decisions[call["id"]] = {"approved": True, "feedback": "", "yolo": True}  # counts to the cap
                self.console.print(dim(f"auto-approved (yolo): {inert(call['name'])}"))
                continue
            self.console.print(approval_card(call, index, len(calls)))
            if call.get("name") != USAGE_CALL:  # its card says what y and n do
                self.console.print(dim(APPROVAL_CHOICES))
            answer = await self._answer()
            if answer is None:
                assert self.session is not None
                await self.session.cancel_approval()
                self.console.print("turn cancelled", style="yellow")
                return None
            decisions[call["id"]], approve_all = approval_decision(answer)
            if approve_all and not self.yolo and call.get("name") != USAGE_CALL:
                self.yolo = True
                self.console.print(YOLO_ON)
        return {"decisions": decisions}

    async def _answer(self) -> str | None:
        """y, n, yolo or feedback; None on Ctrl-C; Ctrl-D or /quit leave with the question still pending."""
        while True:
            try:
                answer = (await self.answers.prompt_async("approve? ", handle_sigint=False)).strip()
            except EOFError:
                raise ChatExit(EXIT_OK) from None
            except KeyboardInterrupt:
                if self.foreground.pressed_twice():
                    raise ChatExit(EXIT_INTERRUPTED) from None
                return None
            if answer in ("/quit", "/exit"):
                raise ChatExit(EXIT_OK)
            if answer:
                return answer
