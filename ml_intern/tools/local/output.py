"""A command's output, bounded: head and tail kept; past the limit the full text goes to a spill file."""

from __future__ import annotations

import time
import uuid
from collections import deque
from pathlib import Path
from typing import IO

from ml_intern.tools.base import MAX_RESULT_CHARS

HEAD_CHARS = MAX_RESULT_CHARS // 4  # tail-biased: errors and summaries come last
TAIL_CHARS = MAX_RESULT_CHARS - HEAD_CHARS


class OutputCollector:
    """Keeps the head and tail of a command's output; past the limit the full text goes to a spill file."""

    def __init__(self, spill_dir: Path) -> None:
        self.spill_dir = spill_dir
        self.head: list[str] = []
        self.tail: deque[str] = deque()
        self.tail_chars = 0
        self.total_chars = 0
        self.spill: IO[str] | _Discard | None = None
        self.spill_path: Path | None = None
        self.detached = False  # the call has returned: later output is drained, not kept
        self.spill_error: str | None = None  # why the full output could not be saved

    def add(self, text: str) -> None:
        """Record a piece of output."""
        if self.detached:
            return
        self.total_chars += len(text)
        if self.spill is None and self.total_chars > MAX_RESULT_CHARS:
            self._start_spill()
        if self.spill is None:
            self.head.append(text)
            return
        self._spill(text)
        self.tail.append(text)
        self.tail_chars += len(text)
        while self.tail_chars - len(self.tail[0]) >= TAIL_CHARS:
            self.tail_chars -= len(self.tail.popleft())

    def _spill(self, text: str) -> None:
        """Save to the spill file; a full disk ends the saving, never the command or the event loop."""
        try:
            self.spill.write(text)
        except OSError as exc:
            self.spill_error = exc.strerror or str(exc)
            self.spill = _Discard()

    def _start_spill(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.spill_path = self.spill_dir / f"bash-{stamp}-{uuid.uuid4().hex[:8]}.txt"
        try:
            if not self.spill_dir.is_dir():  # run_command made it off the event loop
                self.spill_dir.mkdir(parents=True, exist_ok=True)
            self.spill = self.spill_path.open("w", encoding="utf-8")
        except OSError as exc:
            self.spill_error, self.spill = exc.strerror or str(exc), _Discard()
        self._spill("".join(self.head))
        self.tail.extend(self.head)
        self.tail_chars = sum(map(len, self.head))
        self.head = []

    def close(self) -> None:
        """Close the spill file, if any."""
        if self.spill is not None:
            self.spill.close()

    def finish(self) -> str:
        """Close the spill file and return the bounded text."""
        self.close()
        if self.spill_path is None:
            return "".join(self.head)
        tail = "".join(self.tail)[-TAIL_CHARS:]
        if self.spill_error:
            omitted = self.total_chars - len(tail)
            return f"... [{omitted:,} characters omitted; not saved: {self.spill_error}]\n{tail}"
        with self.spill_path.open(encoding="utf-8") as spilled:
            head = spilled.read(HEAD_CHARS)
        omitted = self.total_chars - len(head) - len(tail)
        return (
            f"{head}\n\n... [{omitted:,} of {self.total_chars:,} characters omitted. Full output saved to "
            f"{self.spill_path}; use the read tool with offset/limit to inspect it.] ...\n\n{tail}"
        )


class _Discard:
    """Stands in for a spill file that could not be written."""

    def write(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass
