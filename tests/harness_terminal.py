"""The chat on a pseudo-terminal: a real `ml-intern` process driven with pexpect, its output as plain text."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pexpect

from tests.harness import installed_cli

PROMPT_SHOWN = "\x1b[?2004h"  # prompt_toolkit turns on bracketed paste each time it shows a prompt
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|[\r\x08]")


def plain(text: str) -> str:
    """Terminal output without escape sequences."""
    return ANSI.sub("", text)


def terminal_env(subprocess_env: dict[str, str], llm_url: str) -> dict[str, str]:
    """The subprocess environment on a terminal, with vllm/ models served by the scripted server."""
    return {
        **subprocess_env,
        "VLLM_BASE_URL": llm_url,
        "TERM": "xterm",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect never answers cursor-position requests
    }


class Terminal:
    """An ml-intern process on a pseudo-terminal."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.child = pexpect.spawn(
            str(installed_cli()), list(args), env=env, cwd=str(Path.cwd()), dimensions=(50, 120),
            encoding="utf-8", timeout=60,
        )  # fmt: skip
        self.child.logfile_read = self.log = io.StringIO()

    def prompt(self) -> str:
        """Wait for the next prompt (message or approval); return the plain output before it."""
        self.child.expect_exact(PROMPT_SHOWN)
        return plain(self.child.before)

    def send(self, line: str) -> str:
        """Type a line; return what was printed until the next prompt."""
        self.child.sendline(line)
        return self.prompt()

    def wait_for(self, text: str) -> str:
        self.child.expect_exact(text)
        return plain(self.child.before)

    def exit_code(self) -> int:
        """Wait for the process to end; its exit status."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -self.child.signalstatus

    def output(self) -> str:
        return plain(self.log.getvalue())
