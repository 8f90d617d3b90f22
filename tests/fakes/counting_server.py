"""A scripted model server that survives a crash: it derives each answer from the request, calling step n+1
after n tool results, then finishing. A fixed script cannot: a killed process may have consumed an answer it
never saved."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes import llm_server as script
from tests.fakes.llm_server import ScriptedLLMServer

STEPS = 8
STEP_COMMAND = "sleep 0.2; echo {n} >> log"  # a bash step; `log` shows which steps ran, and how often
FINAL = f"all {STEPS} steps done"
TASK = f"append the numbers 1 to {STEPS} to log, one bash call each"
ALL_STEPS = [f"step{n}" for n in range(1, STEPS + 1)]  # the call ids of a finished run


class CountingServer(ScriptedLLMServer):
    """Call the bash step `command` as `step<n>` until `steps` results are in, then answer FINAL."""

    def __init__(self, steps: int = STEPS, command: str = STEP_COMMAND, latency: float = 0.02) -> None:
        super().__init__()
        self.steps, self.command, self.latency = steps, command, latency

    def take(self, body: Any) -> tuple[int, dict | None]:
        with self._lock:
            self.requests.append(body)
            self.request_times.append(time.monotonic())
            number = len(self.requests)
        done = sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
        if done >= self.steps:
            return number, script.text(FINAL)
        call = script.tool_call("bash", {"command": self.command.format(n=done + 1)}, id=f"step{done + 1}")
        return number, script.delay(self.latency, call)
