"""A job's log: every line to a private file (secrets hidden), a bounded head-and-tail view for the model."""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ml_intern.secrets import redact
from ml_intern.tools.base import ToolError, clip

_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\].*?\x07")
# uv's install chatter, collapsed in the model's view (the file keeps it), as the original's
# `_filter_uv_install_output` did.
_UV_NOISE = re.compile(
    r"^\s*(Resolved|Prepared|Downloading|Downloaded|Building|Built|Installed|Uninstalled|Audited|Updating|"
    r"Updated|Using CPython|Creating virtual environment|Preparing packages)\b|^\s*[+-] [\w.-]+(==|@| )"
)
UV_COLLAPSED = "[installs truncated]"
JOB_ID = re.compile(r"[\w-]{1,100}")


def log_path(home: Path, job_id: str) -> Path:
    """Where a job's log is kept: ML_INTERN_HOME/jobs/<job_id>.log."""
    if not JOB_ID.fullmatch(job_id):
        raise ToolError(f"Not a job id: {job_id[:60]!r}.")
    return home / "jobs" / f"{job_id}.log"


def open_private(path: Path):  # noqa: ANN201 - a text file object
    """`path` truncated and opened for writing, readable by the user only (0600), never through a symlink."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o600), "w", encoding="utf-8")


class LogKeeper:
    """Every line of a log to `path` (when given); the first and last lines kept for the model's view."""

    def __init__(self, hide: Callable[[str], str], path: Path | None = None, head: int = 80, tail: int = 250):
        self.hide = hide  # hides the HF token and secret values: a job that prints them must not leak them
        self.path = path
        self.file = open_private(path) if path else None
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=tail)
        self.head_size = head
        self.count = 0
        self.dropped = 0  # lines that fell out of the tail
        self.head_end = 0
        self.installing = False  # inside a run of uv install lines, shown as one UV_COLLAPSED line

    def add(self, line: str) -> str:
        """Keep a line (without terminal escapes or secrets) and return it."""
        line = redact(self.hide(_ANSI.sub("", line).rstrip("\r\n")))
        self.count += 1
        if self.file:
            self.file.write(line + "\n")
            self.file.flush()
        noise = bool(_UV_NOISE.match(line))
        if not (noise and self.installing):
            kept = UV_COLLAPSED if noise else line
            if len(self.head) < self.head_size:
                self.head.append(kept)
                self.head_end = self.count  # lines of the file the head covers
            else:
                self.dropped += len(self.tail) == self.tail.maxlen
                self.tail.append(kept)
        self.installing = noise
        return line

    def close(self) -> None:
        """Close the log file."""
        if self.file:
            self.file.close()
            self.file = None

    def render(self, limit: int, hint: str) -> str:
        """Head and tail of the log within `limit` characters, saying what was left out."""
        gap = [f"... [{self.dropped} lines omitted; {hint}] ..."] if self.dropped else []
        return clip("\n".join([*self.head, *gap, *self.tail]), limit, hint) if self.count else "(no logs)"


def file_view(path: Path, limit: int, tail: int, offset: int) -> tuple[str, int]:
    """(part of a kept log within `limit` characters, its line count): the last `tail` lines, or the lines
    from `offset` (0-based) on."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if tail > 0:
        text = "\n".join(lines[-tail:])
        return (text if len(text) <= limit else "…" + text[-limit:]), len(lines)
    picked, size = [], 0
    for line in lines[max(0, offset) :]:
        if size + len(line) + 1 > limit and picked:
            break
        picked.append(line[:limit])
        size += len(line) + 1
    end = max(0, offset) + len(picked)
    more = f"\n[lines {offset}-{end - 1} of {len(lines)}; next: offset {end}]" if end < len(lines) else ""
    return "\n".join(picked) + more, len(lines)
