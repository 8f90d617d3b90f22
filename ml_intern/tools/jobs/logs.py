"""A job's log: every line to a private file (secrets hidden), a bounded head-and-tail view for the model."""

from __future__ import annotations

import os
import re
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
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
MAX_FILE_BYTES = 256 * 1024 * 1024  # a print loop must not fill the disk; the lines after it are not kept
CAPPED = "[log file capped at 256 MB: later lines are not kept here; the Hub still has them]"
_writing: set[Path] = set()  # log files open for writing in this process: one writer per job
_writing_lock = threading.Lock()


def log_path(home: Path, job_id: str) -> Path:
    """Where a job's log is kept: ML_INTERN_HOME/jobs/<job_id>.log."""
    if not JOB_ID.fullmatch(job_id):
        raise ToolError(f"Not a job id: {job_id[:60]!r}.")
    return home / "jobs" / f"{job_id}.log"


def open_private(path: Path):  # noqa: ANN201 - a text file object
    """`path` truncated and opened for writing, readable by the user only (0600), never through a symlink
    (neither the file nor its directory); OSError when it cannot be."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_ISLNK(os.lstat(path.parent).st_mode):
        raise OSError(f"{path.parent} is a symlink; refusing to write job logs through it")
    os.chmod(path.parent, 0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    return os.fdopen(fd, "w", encoding="utf-8")


class LogKeeper:
    """Every line of a log to `path` (when given); the first and last lines kept for the model's view."""

    def __init__(self, hide: Callable[[str], str], path: Path | None = None, head: int = 80, tail: int = 250):
        self.hide = hide  # hides the HF token and secret values: a job that prints them must not leak them
        self.path = path
        self.file = None
        self.note = ""  # why the file stopped short of the whole log, if it did
        self.size = 0
        if path:
            with _writing_lock:
                if path in _writing:
                    raise ToolError(f"The log of this job is being written by another call; read {path}.")
                self.file = open_private(path)
                _writing.add(path)
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
            self._write(line)
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

    def move_to(self, path: Path) -> None:
        """Give the open file its final name (a job's id is known only once the Hub created it)."""
        if not self.file or not self.path:
            return
        try:
            os.replace(self.path, path)
        except OSError as err:
            self._say(f"kept as {self.path}: naming it {path.name} failed: {err}")
            return
        with _writing_lock:
            _writing.discard(self.path)
            _writing.add(path)
        self.path = path

    def discard(self) -> None:
        """Remove the (closed) file: nothing was submitted."""
        if self.path and not self.file:
            self.path.unlink(missing_ok=True)

    def add_many(self, lines: Iterable[str]) -> list[str]:
        """Keep a batch of lines (in a worker thread), flushing the file once; the lines as kept."""
        kept = [self.add(str(line)) for line in lines]
        self._flush()
        return kept

    def _write(self, line: str) -> None:
        """One line to the file, until the cap or a write error (then the file stops, with a note)."""
        self.size += len(line) + 1
        try:
            if self.size > MAX_FILE_BYTES:
                self.file.write(CAPPED + "\n")
                self._stop(f"capped at 256 MB after line {self.count - 1}")
            else:
                self.file.write(line + "\n")
        except OSError as err:
            self._stop(f"writing stopped at line {self.count}: {err}")

    def _flush(self) -> None:
        """Flush what was written (a failure stops the file, with a note)."""
        try:
            if self.file:
                self.file.flush()
        except OSError as err:
            self._stop(f"writing stopped near line {self.count}: {err}")

    def _stop(self, note: str) -> None:
        """Stop writing the file, saying why."""
        self._say(note)
        self.close()

    def _say(self, note: str) -> None:
        """Add to what the file's note says."""
        self.note = f"{self.note}; {note}" if self.note else note

    def close(self) -> None:
        """Close the log file."""
        if self.file:
            file, self.file = self.file, None
            try:
                file.close()
            except OSError as err:
                self._say(f"closing the file failed: {err}")
            finally:
                with _writing_lock:
                    _writing.discard(self.path)

    def render(self, limit: int, hint: str) -> str:
        """Head and tail of the log within `limit` characters, saying what was left out."""
        gap = [f"... [{self.dropped} lines omitted; {hint}] ..."] if self.dropped else []
        return clip("\n".join([*self.head, *gap, *self.tail]), limit, hint) if self.count else "(no logs)"


def file_view(path: Path, limit: int, tail: int, offset: int) -> tuple[str, int]:
    """(part of a kept log within `limit` characters, its line count): the last `tail` lines, or the lines
    from `offset` (0-based) on; the file is streamed, never read whole."""
    total = count_lines(path)
    with path.open(encoding="utf-8", errors="replace") as file:
        if tail > 0:
            text = "\n".join(deque((line.rstrip("\n") for line in file), maxlen=tail))
            return (text if len(text) <= limit else "…" + text[-limit:]), total
        picked, size = [], 0
        for line in islice(file, max(0, offset), None):
            line = line.rstrip("\n")
            if size + len(line) + 1 > limit and picked:
                break
            picked.append(line[:limit])
            size += len(line) + 1
    end = max(0, offset) + len(picked)
    more = f"\n[lines {offset}-{end - 1} of {total}; next: offset {end}]" if end < total else ""
    return "\n".join(picked) + more, total


def count_lines(path: Path) -> int:
    """Lines in a file, counted in chunks."""
    with path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


def keeper_of_file(path: Path) -> LogKeeper:
    """A view (head and tail) of a kept log file, streamed (run it in a worker thread)."""
    keeper = LogKeeper(lambda line: line)
    keeper.path = path
    with path.open(encoding="utf-8", errors="replace") as file:
        for line in file:
            keeper.add(line)
    return keeper
